"""The product's in-process caches, emptied between tests (and in a forked test server, which must read
its own test's settings, not those of the process it was forked from)."""

from __future__ import annotations

from backend.app import db as db_module
from backend.app import settings
from backend.content.catalogue import clear_cache as clear_text_revisions
from backend.content.flow_library import clear_cache as clear_flow_revisions
from backend.content.safety_lexicon import reset as reset_site_lexicon
from backend.content.studio import clear_cache as clear_studio_history
from backend.dialogue.content import load_catalog, load_flow
from backend.dialogue.understanding import reset_nlu
from backend.outbox.providers import reset_senders
from backend.security import crypto
from backend.web.studio_flows import clear_cache as clear_flow_graphs


def reset_caches() -> None:
    db_module.dispose_engines()
    settings.get_settings.cache_clear()
    crypto.cipher_for.cache_clear()
    load_catalog.cache_clear()
    clear_text_revisions()
    clear_flow_revisions()
    clear_studio_history()
    clear_flow_graphs()
    reset_site_lexicon()
    load_flow.cache_clear()
    reset_senders()
    reset_nlu()
