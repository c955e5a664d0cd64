"""docker-compose.yml and the Dockerfile agree with the code: setting names, CLI commands, ports, files.

No Docker engine runs here, so nothing is built or started; the files are read and checked against
`backend.app.settings.Settings`, `backend.app.cli.build_parser()` and pyproject.toml.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from pydantic import SecretStr

from backend.app.cli import build_parser
from backend.app.settings import REPO_ROOT, Environment, Settings, environment_names

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = ROOT / "pyproject.toml"

SERVICES = {"api", "worker", "scheduler", "hl7", "rasa", "postgres", "redis"}
APP_SERVICES = ("api", "worker", "scheduler", "hl7")
ROLES = {"api": ["migrate", "serve"], "worker": ["worker"], "scheduler": ["scheduler"], "hl7": ["hl7-listen"]}
CLI_PREFIXES = (["careloop"], ["python", "-m", "backend.app.cli"], ["python3", "-m", "backend.app.cli"])
SHELLS = {"sh", "/bin/sh", "bash", "/bin/bash"}
SHELL_OPERATORS = {"&&", "||", ";", "|", "&"}

# `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`, `${NAME?error}`
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
# What a user would export for the variables compose requires (never real secrets).
STAND_INS = {
    "CARELOOP_SECRET_KEY": "stand-in-secret-key-" + "s" * 32,
    "CARELOOP_DATA_KEY": base64.b64encode(bytes(range(32))).decode(),
    "CARELOOP_PUBLIC_URL": "https://careloop.example.org",
    "POSTGRES_PASSWORD": "stand-in-password",
}


# --- reading the files ------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, from either the mapping or the `- NAME=value` list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict((item.partition("=")[0], item.partition("=")[2]) for item in env)
    return {str(name): "" if value is None else str(value) for name, value in env.items()}


def resolve(value: str, stand_ins: Mapping[str, str] = STAND_INS) -> str:
    """Interpolate like compose does, with stand-ins for required variables and defaults for the rest."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        if op.endswith("-"):
            return arg
        if op.endswith("?"):
            assert name in stand_ins, f"compose requires ${name}; add a stand-in to STAND_INS"
            return stand_ins[name]
        return stand_ins.get(name, "")

    return INTERPOLATION.sub(substitute, value)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    logical = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in logical.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def exec_form(arguments: str) -> list[str]:
    """CMD/ENTRYPOINT arguments as argv: JSON exec form, or shell form run by /bin/sh -c."""
    if arguments.startswith("["):
        argv = json.loads(arguments)
        assert isinstance(argv, list)
        return [str(word) for word in argv]
    return ["/bin/sh", "-c", arguments]


def dockerfile_argv() -> list[str]:
    """What a container of the image runs when compose gives no command: ENTRYPOINT + CMD."""
    last = {keyword: rest for keyword, rest in dockerfile_instructions() if keyword in {"CMD", "ENTRYPOINT"}}
    entrypoint = exec_form(last["ENTRYPOINT"]) if "ENTRYPOINT" in last else []
    cmd = exec_form(last["CMD"]) if "CMD" in last else []
    return entrypoint + cmd


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in dockerfile_instructions():
        if keyword != "ENV":
            continue
        words = shlex.split(rest)
        if "=" not in words[0]:  # legacy `ENV NAME value`
            env[words[0]] = " ".join(words[1:])
        else:
            env.update(word.partition("=")[::2] for word in words)
    return env


def dockerfile_copies() -> tuple[PurePosixPath, dict[PurePosixPath, PurePosixPath]]:
    """The final WORKDIR, and image path -> build-context source for every COPY/ADD."""
    workdir = PurePosixPath("/")
    copies: dict[PurePosixPath, PurePosixPath] = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "WORKDIR":
            workdir = workdir / rest
        elif keyword in {"COPY", "ADD"}:
            words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
            words = [word for word in words if not word.startswith("--")]  # --chown, --from, ...
            *sources, dest = words
            base = workdir / dest
            for source in sources:
                into_dir = dest.endswith("/") or len(sources) > 1
                # A directory's contents land in dest; a file lands in dest/name when dest is a directory.
                target = base / PurePosixPath(source).name if into_dir and (ROOT / source).is_file() else base
                copies[target] = PurePosixPath(source)
    return workdir, copies


# --- the checks (plain functions, so a broken copy of the data can be fed to them) ----------------


def unknown_environment_names(service: Mapping[str, Any]) -> set[str]:
    """Environment names given to a service that Settings does not read (a typo or a renamed setting)."""
    return set(environment_of(service)) - environment_names()


def cli_invocations(argv: list[str]) -> list[list[str]]:
    """The argument lists of every `careloop ...` call in a command (directly or inside `sh -c`)."""
    if len(argv) >= 3 and argv[0] in SHELLS and argv[1] == "-c":
        lexer = shlex.shlex(argv[2], posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        segments: list[list[str]] = [[]]
        for token in lexer:
            if token in SHELL_OPERATORS:
                segments.append([])
            else:
                segments[-1].append(token)
    else:
        segments = [argv]
    invocations = []
    for segment in segments:
        words = segment[1:] if segment[:1] == ["exec"] else segment
        for prefix in CLI_PREFIXES:
            if words[: len(prefix)] == prefix:
                invocations.append(words[len(prefix) :])
    return invocations


def cli_error(args: list[str]) -> str | None:
    """Why `careloop <args>` would be refused by the real parser, or None when it parses."""
    try:
        build_parser().parse_args(args)
    except SystemExit as exc:
        return f"`careloop {shlex.join(args)}` is refused by backend.app.cli (exit {exc.code})"
    return None


def command_of(service: Mapping[str, Any]) -> list[str]:
    """The argv a service runs: its compose command, else the Dockerfile's ENTRYPOINT + CMD."""
    command = service.get("command")
    if command is None:
        return dockerfile_argv()
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"CARELOOP_{field.upper()}"


# --- tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found = compose.get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services"
    return found


def test_compose_defines_the_app_and_its_backing_services(services: dict[str, Any]) -> None:
    assert set(services) >= SERVICES, f"missing services: {sorted(SERVICES - set(services))}"


def test_app_services_share_one_image_built_from_the_dockerfile(services: dict[str, Any]) -> None:
    builds = {name: services[name].get("build") for name in APP_SERVICES}
    for name, build in builds.items():
        context = build if isinstance(build, str) else (build or {}).get("context")
        dockerfile = "Dockerfile" if isinstance(build, str) else (build or {}).get("dockerfile", "Dockerfile")
        assert context is not None, f"{name} is not built from the Dockerfile"
        assert (ROOT / context / dockerfile).resolve() == DOCKERFILE, f"{name} builds {context}/{dockerfile}"
    assert len({str(services[name].get("image")) for name in APP_SERVICES}) == 1


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_environment_uses_only_names_settings_reads(services: dict[str, Any], name: str) -> None:
    assert environment_of(services[name]), f"{name} has no environment"
    unknown = unknown_environment_names(services[name])
    assert unknown == set(), f"{name} sets {sorted(unknown)}, which Settings does not read"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_provides_every_setting_without_a_default(services: dict[str, Any], name: str) -> None:
    required = {env_name(field) for field, info in Settings.model_fields.items() if info.is_required()}
    assert {"CARELOOP_SECRET_KEY", "CARELOOP_DATA_KEY"} <= required <= environment_names()
    missing = required - set(environment_of(services[name]))
    assert missing == set(), f"{name} does not set {sorted(missing)}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_secrets_come_from_required_variables_never_literals(services: dict[str, Any], name: str) -> None:
    env = environment_of(services[name])
    secret_names = [env_name(f) for f, info in Settings.model_fields.items() if info.annotation is SecretStr]
    assert secret_names, "Settings has no secret fields"
    for secret in secret_names:
        match = INTERPOLATION.fullmatch(env[secret])
        assert match and match["op"] == ":?", f"{name}: {secret} must be `${{{secret}:?...}}`, not a literal"
    password = sa.make_url(env["DATABASE_URL"]).password
    assert password is not None and INTERPOLATION.fullmatch(str(password)), "the database password is literal"


def test_postgres_password_is_a_required_variable(services: dict[str, Any]) -> None:
    match = INTERPOLATION.fullmatch(environment_of(services["postgres"]).get("POSTGRES_PASSWORD", ""))
    assert match and match["op"] == ":?"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_urls_point_at_compose_services_with_installed_drivers(
    services: dict[str, Any], name: str
) -> None:
    env = {key: resolve(value) for key, value in environment_of(services[name]).items()}
    database = sa.make_url(env["DATABASE_URL"])
    assert database.host in services, f"DATABASE_URL host {database.host!r} is no compose service"
    # Name the driver: plain `postgresql://` means psycopg2 or psycopg depending on the SQLAlchemy version.
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    dependencies = {re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}
    driver = database.drivername.partition("+")[2]
    assert driver in dependencies, f"DATABASE_URL driver {driver!r} is not a dependency in pyproject.toml"
    assert database.get_dialect().import_dbapi() is not None
    redis = sa.make_url(env["REDIS_URL"])
    assert redis.drivername == "redis" and redis.host in services


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_environment_makes_valid_settings(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in environment_of(services[name]).items():
        monkeypatch.setenv(key, resolve(value))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.env is Environment.PRODUCTION, "compose should default to production"
    assert not settings.is_sqlite and settings.redis_url


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_runs_real_careloop_subcommands_in_its_role(services: dict[str, Any], name: str) -> None:
    invocations = cli_invocations(command_of(services[name]))
    assert [error for args in invocations if (error := cli_error(args))] == []
    assert [build_parser().parse_args(args).command for args in invocations] == ROLES[name]


@pytest.mark.parametrize(("name", "command"), [("api", "serve"), ("hl7", "hl7-listen")])
def test_listeners_bind_all_interfaces_on_the_port_they_publish(
    services: dict[str, Any], name: str, command: str
) -> None:
    service = services[name]
    parsed = [build_parser().parse_args(args) for args in cli_invocations(command_of(service))]
    serve = [ns for ns in parsed if ns.command == command]
    assert len(serve) == 1
    published = set()
    for entry in service.get("ports", []):
        target = entry["target"] if isinstance(entry, dict) else str(entry).split("/")[0].rsplit(":", 1)[-1]
        published.add(int(target))
    assert published == {serve[0].port}
    assert serve[0].host == "0.0.0.0"  # noqa: S104  # inside a container, or nothing outside can reach it


def test_api_healthcheck_probes_the_health_route_on_the_served_port(services: dict[str, Any]) -> None:
    from backend.web.app import create_app

    test = services["api"]["healthcheck"]["test"]
    text = test if isinstance(test, str) else " ".join(test)
    probe = re.search(r"https?://[^/\s'\"]+:(\d+)(/[^\s'\"]*)", text)
    assert probe, f"no URL in the api healthcheck: {test!r}"
    serve = [build_parser().parse_args(a) for a in cli_invocations(command_of(services["api"]))]
    assert int(probe[1]) in {ns.port for ns in serve if ns.command == "serve"}
    assert probe[2] == "/healthz"
    assert "/healthz" in {getattr(route, "path", None) for route in create_app().routes}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_waits_for_healthy_database_and_redis(services: dict[str, Any], name: str) -> None:
    depends = services[name].get("depends_on")
    assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
    for backing in ("postgres", "redis"):
        assert depends.get(backing, {}).get("condition") == "service_healthy", f"{name} -> {backing}"
    for dependency, spec in depends.items():
        if spec.get("condition") == "service_healthy":
            assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck to wait for"


def test_dockerfile_default_command_is_a_real_careloop_subcommand() -> None:
    invocations = cli_invocations(dockerfile_argv())
    assert invocations, f"the Dockerfile does not run careloop: {dockerfile_argv()}"
    assert [error for args in invocations if (error := cli_error(args))] == []


def test_dockerfile_ships_every_package_and_the_files_the_code_reads_from_the_repo() -> None:
    find = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]["find"]
    packages = [p.rstrip("*").rstrip(".") for p in find["include"]]
    needed = [p for p in packages if (ROOT / p / "__init__.py").exists()]
    assert "backend" in needed
    needed.append(str(Settings.model_fields["content_dir"].default.relative_to(REPO_ROOT)))
    workdir, copies = dockerfile_copies()
    missing = [path for path in needed if copies.get(workdir / path) != PurePosixPath(path)]
    assert missing == [], f"the image lacks {missing} under {workdir}"
    # backend.app.settings.REPO_ROOT must be the WORKDIR: import the copied tree, not site-packages.
    assert str(workdir) in dockerfile_env().get("PYTHONPATH", "").split(":")


def test_careloop_is_a_declared_console_script() -> None:
    import importlib

    scripts = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["scripts"]
    module, _, function = scripts["careloop"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
