"""``ogshot bench`` runs end to end (tiny and bounded) and reports what it promises.

No timing is asserted: timings belong to the benchmark's own output, not to a pass/fail.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from click.testing import CliRunner

from ogshot.cli import cli
from tests.support.helpers import ROOT, make_settings


def test_bench_reports_every_stage(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    out = tmp_path / "bench.json"
    env = {
        "OGSHOT_TEMPLATES_DIR": str(settings.templates_dir),
        "OGSHOT_STATIC_DIR": str(settings.static_dir),
        "OGSHOT_CACHE_DIR": str(tmp_path / "unused"),
        "OGSHOT_CONFIG": str(ROOT / "playwright.config.json"),
        "OGSHOT_POOL_SIZE": "1",
    }
    result = CliRunner().invoke(
        cli,
        [
            "bench",
            "--iterations",
            "2",
            "--hit-seconds",
            "1",
            "--saturation-seconds",
            "1",
            "-o",
            str(out),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    article = data["library"]["article"]
    assert set(article["miss"]) == {"png", "jpeg", "webp"}
    assert article["baseline"]["ms"]["n"] == 2 and article["miss"]["png"]["ms"]["n"] == 2
    assert {"load", "capture", "encode"} <= set(article["miss"]["png"]["stages_p50"])
    # PNG is lossless: identical to a full-quality capture of the same page.
    assert article["quality"]["png"]["ssim"] == 1.0
    assert 0.95 < article["quality"]["jpeg"]["ssim"] < 1.0
    server = data["server"]
    assert server["hit"]["requests_per_s"] > 0 and server["hit"]["non_2xx"] == 0
    # The floor app answered the same hit (the bench checks it gives ogshot's bytes) every time.
    floor = server["floor_hit"]
    assert floor["requests_per_s"] > 0 and floor["non_2xx"] == 0
    assert server["hit_vs_floor"] == statistics.median(server["hit_vs_floor_rounds"]) > 0
    assert server["saturation"]["pool"]["renders"] >= 1
    assert server["memory_mb"]["pss_peak"] > 0
    cost = server["metrics_cost"]  # hits with metrics on and off, in the same run
    assert cost["hit_req_per_s_on"] > 0 and cost["hit_req_per_s_off"] > 0
    assert cost["metrics_off_status"] == 404  # the "off" server had no /metrics at all
    assert "cache hit with metrics on:" in result.output
    assert "speed-up vs baseline" in result.output
    assert "floor (bare Starlette + diskcache, same bytes)" in result.output
    assert (tmp_path / "unused").exists() is False  # the bench uses its own temporary caches
