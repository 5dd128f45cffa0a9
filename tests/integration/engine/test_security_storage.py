"""No state leaks between renders on a reused page: what one template stores (cookies,
localStorage, sessionStorage, IndexedDB), the next one, on the same page, cannot read."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ogshot.app import create_app
from ogshot.cache.disk import ImageCache
from ogshot.core.settings import Settings
from tests.support.helpers import make_settings, pixel

# Each kind of storage found paints a green square: cookie at x=0, localStorage at 200,
# sessionStorage at 400, IndexedDB at 600.
PROBE = """
function mark(i) {
  const d = document.createElement("div");
  d.style = `position:fixed;top:0;left:${i * 200}px;width:150px;height:150px;background:#00ff00`;
  document.documentElement.appendChild(d);
}
async function probe() {
  if (document.cookie.includes("secret=")) mark(0);
  if (localStorage.getItem("secret")) mark(1);
  if (sessionStorage.getItem("secret")) mark(2);
  const names = (await indexedDB.databases()).map((d) => d.name);
  if (names.includes("secret")) mark(3);
}
"""

WRITER = (
    "<!doctype html><html><head><style>body { margin: 0; background: #fff; }</style><script>"
    + PROBE
    + """
function writeIndexedDB() {
  return new Promise((resolve) => {
    const open = indexedDB.open("secret", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("s");
    open.onsuccess = () => {
      const tx = open.result.transaction("s", "readwrite");
      tx.objectStore("s").put("{{ token }}", "k");
      tx.oncomplete = () => { open.result.close(); resolve(); };
    };
    open.onerror = () => resolve();
  });
}
document.cookie = "secret={{ token }}; max-age=86400; path=/";
localStorage.setItem("secret", "{{ token }}");
sessionStorage.setItem("secret", "{{ token }}");
window.ogshotReady = writeIndexedDB().then(probe);
</script></head><body></body></html>"""
)

READER = (
    "<!doctype html><html><head><style>body { margin: 0; background: #fff; }</style><script>"
    + PROBE
    + "window.ogshotReady = probe();</script></head><body></body></html>"
)


# No <script> in the document's text, yet a script runs: the escaped parameter becomes the
# frame's HTML. (Putting a parameter in srcdoc makes it code; the page is still scrubbed.)
FRAMED_WRITER = '<!doctype html><html><body><iframe srcdoc="{{ html }}"></iframe></body></html>'
FRAMED_SCRIPT = (
    "<script>document.cookie = 'secret=1; max-age=86400; path=/';"
    "localStorage.setItem('secret', '1'); parent.sessionStorage.setItem('secret', '1');"
    "indexedDB.open('secret', 1);</script>"
)


@pytest.fixture(scope="module")
def app(module_dir: Path) -> Iterator[TestClient]:
    settings = make_settings(module_dir, pool_size=1)  # one page: B runs where A ran
    (Path(settings.templates_dir) / "writer.html").write_text(WRITER)
    (Path(settings.templates_dir) / "framed-writer.html").write_text(FRAMED_WRITER)
    (Path(settings.templates_dir) / "reader.html").write_text(READER)
    with TestClient(create_app(settings)) as client:
        yield client


def marks(image: bytes) -> list[bool]:
    found = []
    for i in range(4):
        r, g, b = pixel(image, i * 200 + 75, 75)
        found.append(g > 200 and r < 60 and b < 60)
    return found


def test_a_render_cannot_read_what_the_previous_one_stored(app: TestClient) -> None:
    for round_ in range(2):
        written = app.get("/og/writer.png", params={"token": f"t{round_}"})
        assert written.status_code == 200
        # The control: the writer itself reads back all four kinds, so the writes did happen.
        assert marks(written.content) == [True] * 4
        read = app.get("/og/reader.png", params={"round": str(round_)})
        assert read.status_code == 200
        names = ["cookie", "localStorage", "sessionStorage", "IndexedDB"]
        leaked = [name for name, seen in zip(names, marks(read.content), strict=True) if seen]
        assert leaked == [], f"round {round_}: the next render read {leaked}"


def test_a_script_hidden_in_a_frame_is_scrubbed_too(app: TestClient) -> None:
    written = app.get("/og/framed-writer.png", params={"html": FRAMED_SCRIPT})
    assert written.status_code == 200
    read = app.get("/og/reader.png", params={"after": "frame"})
    assert marks(read.content) == [False] * 4


def test_the_page_was_reused_and_not_replaced(app: TestClient) -> None:
    """The isolation above comes from clearing the page, not from opening a new one."""
    pool = app.app.state.renderer.pool  # type: ignore[attr-defined]
    assert pool.stats()["pages_replaced"] == 0
    assert pool.browser.launches == 1


def test_an_existing_cache_folder_is_made_owner_only(tmp_path: Path) -> None:
    """The disk side: a cache folder that already exists, readable by all, is closed to others
    (that it stores bytes only and never unpickles is tests/test_cache.py's part)."""
    folder = tmp_path / "shared-cache"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    cache = ImageCache(Settings.load(environ={}, config_file=None, cache_dir=folder))
    try:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    finally:
        cache.close()
