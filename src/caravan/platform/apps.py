"""App state on the local platform: what ``caravan up`` registered for an app (its manifest, its
repository, each stage's API definition, whether it is down) and its file,
``<root>/apps/<app>.json``, written on every change and read back by ``LocalPlatform.open``."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caravan.errors import CaravanError
from caravan.model.manifest import AppManifest, Environment, manifest_from_data
from caravan.platform.functions.storage import write_json

_log = logging.getLogger("caravan.platform")


@dataclass
class AppState:
    manifest: AppManifest
    repo_dir: Path
    apis: dict[str, dict[str, str]] = field(default_factory=dict)  # env -> definition, source
    down: bool = False

    def to_json(self) -> dict[str, Any]:
        manifest = self.manifest
        data = manifest.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude={"pipeline"}
        )
        data.update(manifest.pipeline.to_request())  # the pipeline as a CreatePipeline request
        return {
            "manifest": data,
            "repoDir": str(self.repo_dir),
            "apis": self.apis,
            "down": self.down,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AppState:
        return cls(
            manifest=manifest_from_data(data["manifest"]),
            repo_dir=Path(data["repoDir"]),
            apis=dict(data.get("apis") or {}),
            down=bool(data.get("down")),
        )


def app_file(root: Path, app: str) -> Path:
    return root / "apps" / f"{app}.json"


def save_app(root: Path, state: AppState) -> None:
    # Environments keep their declared order (test before prod).
    write_json(app_file(root, state.manifest.app), state.to_json(), sort_keys=False)


def load_apps(root: Path) -> list[AppState]:
    """The apps kept under ``root``; one whose file cannot be read is skipped with a warning."""
    states = []
    for path in sorted((root / "apps").glob("*.json")):
        try:
            state = AppState.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError, CaravanError) as exc:
            _log.warning("cannot restore the app in %s: %s", path, exc)
            continue
        states.append(state)
    return states


def environment_differences(before: Environment, after: Environment) -> str:
    names = {
        "hosts": "hosts",
        "stage_variables": "stageVariables",
        "data": "data",
        "release": "release",
    }
    changed = [label for key, label in names.items() if getattr(before, key) != getattr(after, key)]
    return ", ".join(changed) or "settings"
