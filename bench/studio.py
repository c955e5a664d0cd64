"""Content studio: publishing a message catalogue of 600 texts in three languages, and the text editor's
page, on PostgreSQL.

Run from the repository root (no arguments):

    PYTHONPATH=. python bench/studio.py

A fresh database (``careloop_bench_<random>``, dropped at the end) is migrated; the catalogue item
gets a first revision of 600 keys × zh-CN, vi, en (every text with a placeholder, like the real ones)
published as a new site's seed. Then, RUNS times: a draft that changes every English text is started,
submitted (validation) and approved by a colleague (validation again, the previous revision superseded,
the new one published, committed). ``publish_s`` is the median time of submit + approve + commit, the
step an editor waits for; ``publish_worst_s`` the slowest.

``preview_turn_ms`` is the median server response time of a questionnaire draft's preview as the
patient's phone form in zh-CN (content/questionnaires/post_discharge.yaml as a studio draft: parsed,
rendered through the form template); ``voice_preview_ms`` the same draft's spoken prompts and grammars in
zh-CN; ``questionnaire_editor_ms`` its editor page (validation by the model and the channel pre-flight in
three languages, every question's fields).

``editor_page_ms`` is the median server response time of the editor page of the last revision (its
first 100 keys, with the missing/stale flags, SMS and WeChat costs computed over all 600 and a history
of RUNS + 1 revisions), measured by an HTTP client on loopback against ``careloop serve`` after a
warm-up; ``editor_filtered_ms`` the same page filtered to stale translations.

Dialogue flows: a flow of FLOW_STEPS steps, each a choice saying three of the catalogue's texts (so its
text keys are checked against the 600 published ones), seeded as revision 1. ``flow_publish_s`` is the
median of RUNS submit + approve + commit of a draft changing every step's text (the flow validation twice:
the loader's rules, unknown, unreachable and trapped steps, every text key); ``flow_editor_ms`` the
median server response time of its editor page (outline with the editor's texts, the SVG graph with
drop-off, a form per step); ``flow_preview_turn_ms`` the simulator's first turn on a draft of the flow
with a draft of the texts (both read, parsed and built afresh, as a preview of drafts is never cached).

The output ends with one JSON line of the figures.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: `bench` is then a package on the path

from bench.harness import HOST, fixed_env, migrated_database, report, server  # noqa: E402

KEYS, RUNS, PAGE_RUNS, WARMUP = 600, 5, 15, 3
FLOW_STEPS, FLOW = 200, "bench_flow"
PASSWORD = "bench-password-1"
QUESTIONNAIRE = "post_discharge"


def body(version: int) -> dict[str, dict[str, str]]:
    return {
        "zh-CN": {f"area{k % 20}.text{k}": f"您好 {{name}}，这是第 {k} 条随访消息。" for k in range(KEYS)},
        "vi": {
            f"area{k % 20}.text{k}": f"Xin chào {{name}}, đây là tin nhắn theo dõi số {k}."
            for k in range(KEYS)
        },
        "en": {
            f"area{k % 20}.text{k}": f"Hello {{name}}, this is follow-up message {k} (v{version})."
            for k in range(KEYS)
        },
    }


def key(k: int) -> str:
    return f"area{k % 20}.text{k % KEYS}"


def flow(run: int) -> dict[str, object]:
    """A chain of choice steps (on, back; the last ends), each saying texts of the catalogue; `run`
    changes which text every step says."""
    steps: dict[str, object] = {}
    for i in range(FLOW_STEPS):
        last = i == FLOW_STEPS - 1
        steps[f"s{i}"] = {
            "say": key(i + run),
            "reprompt": key(i + 200),
            "choices": [
                {"id": "on", "label": key(i + 400), "next": "done" if last else f"s{i + 1}"},
                {"id": "back", "label": key(i + 401), "next": f"s{max(i - 1, 0)}"},
            ],
        }
    steps["done"] = {"say": key(599), "end": True}
    steps["s0"]["set"] = {"name": "Lan"}  # type: ignore[index]  # every text names the patient
    return {"id": FLOW, "version": 1, "start": "s0", "steps": steps}


def flow_runs() -> tuple[list[float], int, int]:
    """Seeds the flow, publishes RUNS revisions; the numbers of a flow draft and a texts draft to preview."""
    from backend.app.db import session_scope
    from backend.content import revisions as rv
    from backend.content.catalogue import DIALOGUES
    from backend.content.flows import KIND as FLOWS
    from backend.content.texts import KIND
    from backend.models import StaffUser

    with session_scope() as session:
        rv.do_publish_initial(
            session, rv.get_item(session, FLOWS, FLOW, create=True), flow(0), source="files"
        )
    times = []
    for run in range(1, RUNS + 1):
        with session_scope() as session:
            editor = session.query(StaffUser).filter_by(username="editor").one()
            number = rv.do_start_draft(
                session, rv.get_item(session, FLOWS, FLOW), editor, body=flow(run)
            ).number
        started = time.perf_counter()
        with session_scope() as session:
            item = rv.get_item(session, FLOWS, FLOW)
            editor = session.query(StaffUser).filter_by(username="editor").one()
            approver = session.query(StaffUser).filter_by(username="approver").one()
            rv.do_submit(session, item, number, editor)
            rv.do_approve(session, item, number, approver)
        times.append(time.perf_counter() - started)
        print(f"  flow revision {number}: submit + approve + commit {times[-1]:.3f} s", flush=True)
    with session_scope() as session:
        editor = session.query(StaffUser).filter_by(username="editor").one()
        draft = rv.do_start_draft(session, rv.get_item(session, FLOWS, FLOW), editor, body=flow(RUNS + 1))
        texts = rv.do_start_draft(session, rv.get_item(session, KIND, DIALOGUES), editor, body=body(RUNS + 1))
        return times, draft.number, texts.number


def publish_runs() -> list[float]:
    from backend.app.db import session_scope
    from backend.content import revisions as rv
    from backend.content.catalogue import DIALOGUES
    from backend.content.questionnaire import KIND as QUESTIONNAIRES
    from backend.content.texts import KIND
    from backend.models import Role, StaffUser
    from backend.security.auth import hash_password

    with session_scope() as session:
        for name in ("editor", "approver"):
            session.add(
                StaffUser(
                    username=name,
                    display_name=name,
                    roles={Role.CONTENT_EDITOR},
                    password_hash=hash_password(PASSWORD),
                    language="en",
                    content_approver=True,
                )
            )
        item = rv.get_item(session, KIND, DIALOGUES, create=True)
        rv.do_publish_initial(session, item, body(0), source="files")
    with session_scope() as session:
        editor = session.query(StaffUser).filter_by(username="editor").one()
        form = rv.get_item(session, QUESTIONNAIRES, QUESTIONNAIRE, create=True)
        definition = yaml.safe_load(
            (ROOT / "content" / "questionnaires" / f"{QUESTIONNAIRE}.yaml").read_text()
        )
        rv.do_start_draft(session, form, editor, body=definition)
    times = []
    for run in range(1, RUNS + 1):
        with session_scope() as session:
            item = rv.get_item(session, KIND, DIALOGUES)
            editor = session.query(StaffUser).filter_by(username="editor").one()
            approver = session.query(StaffUser).filter_by(username="approver").one()
            draft = rv.do_start_draft(session, item, editor, body=body(run))
            number = draft.number
        started = time.perf_counter()
        with session_scope() as session:
            item = rv.get_item(session, KIND, DIALOGUES)
            editor = session.query(StaffUser).filter_by(username="editor").one()
            approver = session.query(StaffUser).filter_by(username="approver").one()
            rv.do_submit(session, item, number, editor)
            rv.do_approve(session, item, number, approver)
        times.append(time.perf_counter() - started)
        print(f"  revision {number}: submit + approve + commit {times[-1]:.3f} s", flush=True)
    return times


def page_ms(client: httpx.Client, path: str) -> float:
    times = []
    for n in range(WARMUP + PAGE_RUNS):
        started = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code}")
        if n >= WARMUP:
            times.append(elapsed)
    return statistics.median(times)


def main() -> None:
    with migrated_database(fixed_env) as url:
        os.environ.update(fixed_env(url))
        publish = publish_runs()
        flow_publish, flow_draft, texts_draft = flow_runs()
        last = RUNS + 1
        with server(fixed_env(url)) as (port, _pid):
            client = httpx.Client(base_url=f"http://{HOST}:{port}", timeout=60)
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/staff/login").text)
            assert token is not None
            client.post(
                "/staff/login",
                data={
                    "username": "editor",
                    "password": PASSWORD,
                    "totp_code": "",
                    "csrf_token": token.group(1),
                },
            )
            assert "cl_session" in client.cookies
            base = f"/staff/studio/items/messages/dialogues/r/{last}"
            editor = page_ms(client, base)
            filtered = page_ms(client, f"{base}?show=stale")
            draft = f"/staff/studio/items/questionnaires/{QUESTIONNAIRE}/r/1"
            preview = page_ms(client, f"{draft}/preview/form?lang=zh-CN")
            voice = page_ms(client, f"{draft}/preview/voice?lang=zh-CN")
            qeditor = page_ms(client, draft)
            flow_editor = page_ms(client, f"/staff/studio/items/flows/{FLOW}/r/{RUNS + 1}")
            flow_preview = page_ms(
                client, f"/staff/flows/simulate?flow={FLOW}&revision={flow_draft}&texts={texts_draft}&lang=vi"
            )
            client.close()
    print(
        f"publish (submit + approve, {KEYS} texts x 3 languages): median {statistics.median(publish):.3f} s"
    )
    print(f"editor page: {editor:.1f} ms; filtered to stale translations: {filtered:.1f} ms")
    print(
        f"questionnaire draft ({QUESTIONNAIRE}): form preview {preview:.1f} ms, voice preview {voice:.1f} ms, "
        f"editor {qeditor:.1f} ms"
    )
    print(
        f"flow of {FLOW_STEPS} steps: publish median {statistics.median(flow_publish):.3f} s, "
        f"editor {flow_editor:.1f} ms, preview turn on drafts {flow_preview:.1f} ms"
    )
    report(
        {
            "publish_s": round(statistics.median(publish), 3),
            "flow_publish_s": round(statistics.median(flow_publish), 3),
            "flow_editor_ms": round(flow_editor, 1),
            "flow_preview_turn_ms": round(flow_preview, 1),
            "publish_worst_s": round(max(publish), 3),
            "editor_page_ms": round(editor, 1),
            "editor_filtered_ms": round(filtered, 1),
            "preview_turn_ms": round(preview, 1),
            "voice_preview_ms": round(voice, 1),
            "questionnaire_editor_ms": round(qeditor, 1),
            "texts": KEYS * 3,
            "revisions": last,
        }
    )


if __name__ == "__main__":
    main()
