"""``avatar push``: a student folder to the Hugging Face Hub, as the Hub's own client uploads it.

Why a command of our own and not ``huggingface-cli upload``: a student is more than files.
It is checked first (a Hugging Face folder with ``avatar.json``), gets its model card when
it has none (a student saved before cards existed), and only the student's own files go up:
never a temporary file of a killed export or a set-aside checkpoint. Offline (``HF_HUB_OFFLINE``),
without a login, or without a network, it ends in one line instead of the client's traceback.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from avatar.core.errors import AvatarError
from avatar.core.io import atomic_write_text, first_line
from avatar.distill.card import CARD_NAME, model_card
from avatar.distill.folder import META_NAME, check_student_dir

CARD = CARD_NAME


@dataclass(frozen=True)
class PushPlan:
    """What ``push`` uploads: the folder, the repository and the files (names relative to the folder)."""

    folder: Path
    repo_id: str
    files: list[str]
    private: bool


def student_files(folder: Path) -> list[str]:
    """The student's own files: no hidden or temporary ones (a killed writer's ``.x.tmp``)."""
    return sorted(
        path.relative_to(folder).as_posix() for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and ".tmp" not in path.name
    )


def plan_push(student_dir: str | os.PathLike[str], repo_id: str, private: bool = False) -> PushPlan:
    """Check the folder and the repository id, write a missing model card: all before the network."""
    folder = check_student_dir(student_dir)
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise AvatarError(f"repository id must be <user or organisation>/<name>, got {repo_id!r}")
    if not (folder / CARD).is_file():  # a student saved before model cards: its card from avatar.json
        meta_path = folder / META_NAME
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        atomic_write_text(folder / CARD, str(model_card(meta)))
    return PushPlan(folder, repo_id, student_files(folder), private)


def push(plan: PushPlan, token: str | None = None) -> str:
    """Create the repository (if needed) and upload the files in one commit; the commit's URL."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if constants.HF_HUB_OFFLINE:
        raise AvatarError("HF_HUB_OFFLINE is set: avatar push needs the Hugging Face Hub; unset it, "
                          "log in (hf auth login, or HF_TOKEN) and run the command again")
    api = HfApi(token=token)
    try:
        api.create_repo(plan.repo_id, private=plan.private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(folder_path=plan.folder, repo_id=plan.repo_id, allow_patterns=plan.files,
                                   commit_message=f"Avatar student ({len(plan.files)} files)")
    except OfflineModeIsEnabled:
        raise AvatarError("HF_HUB_OFFLINE is set: avatar push needs the Hugging Face Hub") from None
    except HfHubHTTPError as error:
        status = getattr(error.response, "status_code", None)
        hint = ("log in first (hf auth login, or HF_TOKEN)" if status in (401, 403)
                else "check the repository id and your rights on it")
        reason = first_line(error)
        raise AvatarError(f"the Hub refused the push to {plan.repo_id} ({reason}); {hint}") from None
    except OSError as error:  # requests' connection errors are OSErrors
        raise AvatarError(f"cannot reach the Hugging Face Hub ({first_line(error)}); check the network "
                          "or a proxy (HTTPS_PROXY)") from None
    return str(commit.commit_url)
