"""A patient at the web chat page for end-to-end flow tests: says things, keeps what the bot answered."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.app.settings import get_settings
from backend.dialogue.content import load_catalog
from backend.messaging.links import LinkKind, make_token
from tests import factories

_ids = itertools.count(1)


def next_client_id() -> str:
    return f"client-{next(_ids):06d}"


@dataclass
class Chat:
    """One patient's chat link driven through the real app (`POST /c/<token>/messages`)."""

    client: TestClient
    token: str
    after: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)

    def open(self) -> list[dict[str, Any]]:
        assert self.client.get(f"/c/{self.token}").status_code == 200
        return self._fetch()

    def _fetch(self) -> list[dict[str, Any]]:
        items = self.client.get(f"/c/{self.token}/messages", params={"after": self.after}).json()["items"]
        if items:
            self.after = items[-1]["id"]
        bot = [i for i in items if not i["mine"]]
        self.seen = bot
        return bot

    def say(self, text: str | None = None, choice: str | None = None) -> list[dict[str, Any]]:
        form = {"client_id": next_client_id()}
        if text is not None:
            form["text"] = text
        if choice is not None:
            form["choice"] = choice
        response = self.client.post(
            f"/c/{self.token}/messages", data=form, headers={"Accept": "application/json"}
        )
        assert response.status_code == 200, response.text
        return self._fetch()

    def text(self) -> str:
        return "\n".join(i["text"] for i in self.seen)

    def choices(self) -> list[dict[str, str]]:
        return [c for i in self.seen for c in i["choices"]]

    def payload(self, label_part: str) -> str:
        found = [c["payload"] for c in self.choices() if label_part in c["label"]]
        assert found, f"no choice with {label_part!r} in {self.choices()}"
        return found[0]


MENU = {"zh-CN": "菜单", "vi": "menu", "en": "menu"}


def text_of(lang: str, key: str) -> str:
    settings = get_settings()
    return load_catalog(settings.content_dir, settings.hospital_name).text(lang, key)


def at_the_menu(client: TestClient, db: Session, lang: str) -> tuple[int, Chat]:
    """A patient who opened the chat, agreed to care messages and asked for the main menu."""
    person = factories.patient(db, language=lang, dept=factories.department(db))
    db.commit()
    chat = Chat(client, make_token(get_settings(), LinkKind.CHAT, person.id))
    chat.open()
    chat.say(choice="yes")
    chat.say(MENU[lang])
    assert text_of(lang, "menu.prompt") in chat.text()
    return person.id, chat
