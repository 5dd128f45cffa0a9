"""``ogshot init``: a new project folder with the gallery's templates, partials and static files.

They ship inside the package: in git, ``html_templates`` and ``static`` here are symlinks to the
repository's own folders (one copy to edit); a wheel holds real files (``package-data`` in
pyproject.toml). So an ogshot installed from a wheel has something to render before anyone has
written a template.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["FOLDERS", "no_templates_message", "project_files", "write_project"]

FOLDERS = ("html_templates", "static")


def project_files() -> dict[str, bytes]:
    """Every file ``ogshot init`` writes: its path in the project (``static/css/base.css``) and
    its bytes."""
    files: dict[str, bytes] = {}
    root = resources.files(__name__)
    for folder in FOLDERS:
        _collect(root / folder, folder, files)
    return files


def _collect(node: Traversable, path: str, files: dict[str, bytes]) -> None:
    if node.is_dir():
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name != "__pycache__":
                _collect(child, f"{path}/{child.name}", files)
    elif node.is_file():
        files[path] = node.read_bytes()


def write_project(directory: Path, *, force: bool = False) -> list[Path]:
    """Write the project files under ``directory`` (created if missing) and return their paths.
    Raises FileExistsError, writing nothing, when one exists and ``force`` is false."""
    files = project_files()
    if not files:
        raise FileNotFoundError("this ogshot was installed without its gallery templates")
    targets = {directory / name: data for name, data in files.items()}
    existing = [path for path in targets if path.exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise FileExistsError(
            f"{len(existing)} of the {len(targets)} files already exist ({shown}): "
            "nothing was written; use --force to overwrite them"
        )
    for path, data in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return list(targets)


def no_templates_message(templates_dir: Path) -> str:
    """What to say when the templates folder is missing or holds no template."""
    state = "" if templates_dir.is_dir() else " (the folder does not exist)"
    return (
        f"no templates in {templates_dir}{state}: run `ogshot init DIR` to start a project with "
        "the gallery's templates and run ogshot from DIR, or set OGSHOT_TEMPLATES_DIR to your "
        "templates folder"
    )
