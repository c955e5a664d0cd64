"""The FastAPI application: patient chat, staff UI, health check; security headers on every response."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from backend.app.db import session_scope
from backend.app.settings import Environment, get_settings
from backend.fhir.outcome import FhirError, IssueType
from backend.voice import engines
from backend.web import (
    admin_channels,
    admin_org,
    admin_oversight,
    admin_people,
    admin_roles,
    admin_schedules,
    admin_sites,
    appointments,
    case_actions,
    case_reports,
    cases,
    chat,
    education_pages,
    email_pages,
    feedback,
    fhir,
    flows,
    forms,
    his_sources,
    home,
    hooks,
    imports,
    inbox,
    inbox_task,
    integration,
    integration_results,
    media,
    messages,
    outreach,
    privacy_pages,
    questionnaire_import,
    record,
    safety_pages,
    spot_checks,
    sso,
    staff,
    stats,
    studio,
    studio_flows,
    studio_kinds,
    studio_plans,
    studio_questionnaires,
    studio_safety,
    studio_translations,
    studio_voice,
    voice_calls,
    voice_hooks,
    voice_monitor,
    voice_stream,
    wechat_pages,
    work_pages,
)
from backend.web.body_limit import BodyLimit
from backend.web.deps import NotSignedIn
from backend.web.ids import IdsInPath
from backend.web.permits import NotPermitted
from backend.web.rate_limit import PatientRateLimit
from backend.web.security_headers import SecurityHeaders


def create_app() -> FastAPI:
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = FastAPI(title="CareLoop", docs_url=None, redoc_url=None, openapi_url=None)
    # A bad speech model is logged and its language goes by keypad; the server starts all the same.
    engines.check_models(settings)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(chat.router)
    app.include_router(hooks.router)
    app.include_router(forms.router)
    app.include_router(staff.router)
    app.include_router(sso.router)
    app.include_router(home.router)
    app.include_router(privacy_pages.router)
    app.include_router(record.router)
    app.include_router(spot_checks.router)
    app.include_router(integration.router)
    app.include_router(integration_results.router)
    app.include_router(his_sources.router)
    app.include_router(imports.router)
    app.include_router(safety_pages.router)
    app.include_router(work_pages.router)
    app.include_router(questionnaire_import.router)
    app.include_router(outreach.router)
    app.include_router(stats.router)
    app.include_router(voice_monitor.router)
    app.include_router(voice_calls.router)
    app.include_router(flows.router)
    app.include_router(studio_flows.router)  # before studio: its literal /items/flows
    app.include_router(studio_questionnaires.router)  # before studio: its literal /items/questionnaires
    app.include_router(studio_plans.router)  # before studio: its literal /items/plans
    app.include_router(studio_translations.router)  # before studio: /r/{n}/translation vs /r/{n}/{action}
    app.include_router(studio_safety.router)
    # the shared editor routes, before studio: their literal kinds win over its texts editor's /items/{kind}
    app.include_router(studio_safety.editor)
    app.include_router(studio_kinds.router)
    app.include_router(studio_kinds.canned_editor)
    app.include_router(studio_kinds.article_editor)
    app.include_router(studio_kinds.course_editor)
    app.include_router(studio_kinds.templates_editor)
    app.include_router(studio_voice.router)
    app.include_router(studio.router)
    app.include_router(messages.router)
    app.include_router(inbox.router)
    app.include_router(inbox_task.router)  # after inbox: /events before /{task_id}
    app.include_router(media.router)
    app.include_router(wechat_pages.router)
    app.include_router(appointments.router)
    app.include_router(case_reports.router)  # before cases: its fixed paths beat /staff/cases/{id}
    app.include_router(cases.router)
    app.include_router(case_actions.router)
    app.include_router(feedback.router)
    app.include_router(email_pages.router)
    app.include_router(education_pages.router)
    app.include_router(voice_hooks.router)
    app.include_router(voice_stream.router)
    app.include_router(fhir.router)
    app.include_router(admin_people.router)
    app.include_router(admin_roles.router)
    app.include_router(admin_org.router)
    app.include_router(admin_sites.router)
    app.include_router(admin_schedules.router)
    app.include_router(admin_oversight.router)
    app.include_router(admin_channels.router)

    @app.exception_handler(NotSignedIn)
    async def _to_sign_in(request: Request, _exc: NotSignedIn) -> Response:
        return RedirectResponse("/staff/login", status_code=303)

    @app.exception_handler(FhirError)
    async def _fhir_error(request: Request, exc: FhirError) -> Response:
        return fhir.error_response(exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        """A FHIR client gets an OperationOutcome, never a stack trace; the log keeps the trace."""
        if not request.url.path.startswith("/fhir/"):
            return PlainTextResponse("Internal Server Error", status_code=500)
        logging.getLogger("backend.web.fhir").exception("FHIR request failed: %s", request.url.path)
        failed = FhirError(500, IssueType.EXCEPTION, "the server failed; the error is logged")
        return fhir.error_response(failed)

    @app.exception_handler(NotPermitted)
    async def _not_permitted(request: Request, exc: NotPermitted) -> Response:
        context = {"staff": exc.staff}
        return staff.render(request, exc.page, exc.staff.staff.language, context, 403)

    @app.exception_handler(staff.CsrfFailed)
    async def _csrf(request: Request, _exc: staff.CsrfFailed) -> Response:
        return PlainTextResponse(
            "This form has expired. Go back, reload the page and try again.", status_code=403
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/healthz/hl7", include_in_schema=False)
    async def healthz_hl7() -> JSONResponse:
        """For monitoring: 503 while the HL7 feed is silent in working hours (no patient data)."""
        from backend.integration.feed import feed_status

        def read() -> Any:
            with session_scope() as session:
                return feed_status(session, settings)

        status = await run_in_threadpool(read)
        body = {
            "last_message_at": status.last_received_at.isoformat() if status.last_received_at else None,
            "silent_seconds": int(status.silent_for.total_seconds()) if status.silent_for else None,
            "alert": status.alert,
        }
        return JSONResponse(body, status_code=503 if status.alert else 200)

    app.add_middleware(IdsInPath)
    app.add_middleware(PatientRateLimit)
    app.add_middleware(
        BodyLimit,
        upload_bytes=settings.max_attachment_bytes,
        fhir_bytes=settings.fhir_max_body_bytes,
        import_bytes=settings.import_max_bytes,
    )
    # outermost: a refused body's 413 carries the headers too
    app.add_middleware(SecurityHeaders, hsts=settings.env is Environment.PRODUCTION)

    app.state.settings = settings
    return app
