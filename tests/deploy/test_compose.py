"""docker-compose.yml and deploy/docker/Dockerfile, checked without a container engine: every
image is built from the Dockerfile (an existing stage) or is the pinned PostgreSQL/Kafka; every
command names a binary (and subcommand) that exists; every CASB_* variable given to a casb
container is one its command accepts (as `--help` lists it); secrets come only from .env;
init (migrate, create-topics) runs before the services; the images run as user 10001 with an
exec-form ENTRYPOINT; and the topics deploy/local creates are the ones the code creates.

Needs the built binaries (CASB_BUILD_DIR, default build/) and PyYAML:
    CASB_BUILD_DIR=build .local/venv-deploy/bin/python -m pytest -q tests/deploy/test_compose.py
"""

import functools
import json
import os
import pathlib
import re
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
LIB_SH = ROOT / "deploy" / "local" / "lib.sh"
BUILD = pathlib.Path(os.environ.get("CASB_BUILD_DIR", ROOT / "build"))
POSTGRES_IMAGE = "postgres:15"
SERVICE_USER = "10001"
# A service's /readyz must be healthy before the demo runs; these are its long-running ones.
CASB_SERVICES = ["integration-manager", "scheduler", "scanner-worker", "findings-api"]
# Variables a `${VAR:?}` must supply besides those --help marks secret.
NON_CASB_SECRETS = {"POSTGRES_PASSWORD", "CASB_TOKEN"}
FROM_ENV_FILE = re.compile(r"\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}")
HELP_VAR = re.compile(r"^  (CASB_[A-Z0-9_]+) \(([^)]*)\)", re.M)


@functools.lru_cache(maxsize=None)
def compose():
    return yaml.safe_load(COMPOSE.read_text())


def services():
    return compose()["services"]


def lib_sh_value(name):
    m = re.search(rf"^{name}=\"?([^\"\n]*)\"?$", LIB_SH.read_text(), re.M)
    assert m, f"{name} not found in {LIB_SH}"
    return m.group(1)


@functools.lru_cache(maxsize=None)
def dockerfile_stages():
    """{stage name: [(instruction, argument text)]}, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            m = re.match(r"(\S+)\s+AS\s+(\S+)", rest, re.I)
            assert m, f"unnamed stage in {DOCKERFILE}: {line}"
            current = stages.setdefault(m.group(2), [("FROM", m.group(1))])
            continue
        current.append((word, rest.strip()))
    return stages


def stage_chain(target):
    """The instructions of target and of the stages it is built FROM, base first."""
    stages = dockerfile_stages()
    chain = []
    while target in stages:
        chain = stages[target] + chain
        target = stages[target][0][1]
    return chain


def stage_binaries(target):
    """The casb-* binaries a stage (with its bases) copies into /usr/local/bin."""
    names = set()
    for word, rest in stage_chain(target):
        if word == "COPY" and rest.rstrip().endswith("/usr/local/bin/"):
            names.update(re.findall(r"/build/(casb-[a-z-]+)", rest))
    return names


def image_target(svc):
    build = svc.get("build")
    if not build:
        return None
    assert (ROOT / build.get("context", ".") / build["dockerfile"]).resolve() == DOCKERFILE
    return build["target"]


def command(svc):
    cmd = svc.get("command")
    assert isinstance(cmd, list), f"command must be a list (exec form): {cmd!r}"
    return cmd


def is_casb_command(svc):
    return image_target(svc) is not None and command(svc)[0].startswith("casb-")


@functools.lru_cache(maxsize=None)
def help_vars(*argv):
    """{variable: its --help attributes} of build/<argv[0]> argv[1:] --help."""
    binary = BUILD / argv[0]
    assert binary.exists(), f"{binary} not built (set CASB_BUILD_DIR)"
    out = subprocess.run([str(binary), *argv[1:], "--help"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, f"{' '.join(argv)} --help exited {out.returncode}: {out.stderr}"
    # A binary may print its own help for `<unknown subcommand> --help`: the usage line tells.
    assert out.stdout.startswith(f"Usage: {' '.join(argv)} "), \
        f"{' '.join(argv)}: not a known (sub)command: {out.stdout.splitlines()[:1]}"
    found = dict(HELP_VAR.findall(out.stdout))
    # The simulator lists its variables in prose ("Environment: CASB_LOG_LEVEL (...)").
    for name in re.findall(r"\b(CASB_[A-Z0-9_]+)\b", out.stdout):
        found.setdefault(name, "")
    return found


def environment(svc):
    env = svc.get("environment") or {}
    assert isinstance(env, dict), "environment must be a mapping"
    return {k: str(v) for k, v in env.items()}


def casb_services():
    return {name: svc for name, svc in services().items() if is_casb_command(svc)}


def test_images_are_built_or_pinned():
    kafka = f"apache/kafka:{lib_sh_value('CASB_KAFKA_VERSION')}"
    for name, svc in services().items():
        target = image_target(svc)
        if target is None:
            assert svc.get("image") in (POSTGRES_IMAGE, kafka), f"{name}: image {svc.get('image')}"
        else:
            assert target in dockerfile_stages(), f"{name}: no stage {target} in {DOCKERFILE}"


def test_commands_name_existing_binaries_and_subcommands():
    for name, svc in services().items():
        target = image_target(svc)
        if target is None:
            continue
        cmd = command(svc)
        if cmd[0] == "/bin/sh":
            # The demo's one-shot scripts: only in the simulator image, which has their tools.
            assert target == "sim", f"{name}: a shell command outside the sim image"
            continue
        assert cmd[0] in stage_binaries(target), f"{name}: {cmd[0]} is not in image {target}"
        subcommand = cmd[1:2] if len(cmd) > 1 and not cmd[1].startswith("-") else []
        help_vars(cmd[0], *subcommand)


def test_demo_scripts_use_what_the_sim_image_has():
    copied = " ".join(rest for word, rest in stage_chain("sim") if word == "COPY")
    for name, svc in services().items():
        cmd = command(svc) if image_target(svc) else []
        if cmd[:1] != ["/bin/sh"]:
            continue
        script = cmd[-1]
        if "demo.py" in script:
            assert "deploy/local/demo.py /opt/casb/demo.py" in copied
            for tenant in re.findall(r"/opt/casb/tenants/([\w.-]+)", script):
                assert (ROOT / "tests/fakes/saas-sim/tenants" / tenant).exists(), tenant


def test_casb_variables_are_accepted():
    for name, svc in services().items():
        if not is_casb_command(svc):
            continue
        cmd = command(svc)
        subcommand = cmd[1:2] if len(cmd) > 1 and not cmd[1].startswith("-") else []
        accepted = help_vars(cmd[0], *subcommand)
        for var in environment(svc):
            if var.startswith("CASB_"):
                assert var in accepted, f"{name}: {' '.join(cmd)} does not read {var}"


def test_required_variables_are_set():
    """What --help marks required (without a default) is given to every casb container:
    a service missing one would exit 2 at start."""
    for name, svc in services().items():
        if not is_casb_command(svc):
            continue
        cmd = command(svc)
        subcommand = cmd[1:2] if len(cmd) > 1 and not cmd[1].startswith("-") else []
        required = {v for v, attrs in help_vars(cmd[0], *subcommand).items()
                    if "required" in attrs}
        missing = required - set(environment(svc))
        assert not missing, f"{name}: {' '.join(cmd)} requires {sorted(missing)}"


def test_demo_gets_the_variables_demo_py_reads():
    read = set(re.findall(r'env\("([A-Z_]+)"\)', (ROOT / "deploy/local/demo.py").read_text()))
    env = environment(services()["demo"])
    assert read <= set(env), f"demo lacks {read - set(env)}"


def secret_value_ok(var, value):
    if var.endswith("DATABASE_URL"):
        m = re.match(r"postgresql://[^:@/]+:(.*)@", value)
        return m is not None and FROM_ENV_FILE.fullmatch(m.group(1)) is not None
    return FROM_ENV_FILE.fullmatch(value) is not None


def test_secrets_come_from_the_env_file():
    for name, svc in services().items():
        secret = set(NON_CASB_SECRETS)
        if is_casb_command(svc):
            cmd = command(svc)
            subcommand = cmd[1:2] if len(cmd) > 1 and not cmd[1].startswith("-") else []
            secret |= {v for v, attrs in help_vars(cmd[0], *subcommand).items()
                       if "secret" in attrs}
        for var, value in environment(svc).items():
            if var in secret:
                assert secret_value_ok(var, value), f"{name}: {var} is literal, not ${{...:?}}"


def depends(name):
    """{dependency: condition} of a service, short and long syntax alike."""
    dep = services()[name].get("depends_on") or {}
    if isinstance(dep, list):
        return {d: "service_started" for d in dep}
    return {d: (c or {}).get("condition", "service_started") for d, c in dep.items()}


def closure(name):
    """Every (dependency, condition) reached from name."""
    seen, todo = {}, [name]
    while todo:
        for dep, cond in depends(todo.pop()).items():
            if dep not in seen:
                seen[dep] = cond
                todo.append(dep)
    return seen


def runs(subcommand):
    return [n for n, s in services().items()
            if image_target(s) and command(s)[:2] == ["casb-integration-manager", subcommand]]


def test_init_runs_before_the_services():
    migrate, topics = runs("migrate"), runs("create-topics")
    assert len(migrate) == 1 and len(topics) == 1
    assert "healthcheck" in services()["postgres"] and "healthcheck" in services()["kafka"]
    assert closure(migrate[0]).get("postgres") == "service_healthy"
    assert closure(topics[0]).get("kafka") == "service_healthy"
    for svc in CASB_SERVICES:
        assert svc in services(), f"no {svc} in {COMPOSE}"
        deps = closure(svc)
        for one_shot in migrate + topics:
            assert deps.get(one_shot) == "service_completed_successfully", \
                f"{svc} does not wait for {one_shot} to complete"


def test_services_have_exec_form_readyz_healthchecks():
    for svc in CASB_SERVICES:
        test = services()[svc]["healthcheck"]["test"]
        assert test[0] == "CMD", f"{svc}: healthcheck needs no shell"
        assert test[1] == "curl", f"{svc}: healthcheck {test}"
        assert any(a.endswith("/readyz") for a in test), f"{svc}: not /readyz"
    runtime = " ".join(rest for word, rest in stage_chain("runtime") if word == "RUN")
    assert re.search(r"\bcurl\b", runtime), "the runtime image lacks curl for the healthchecks"


def test_demo_waits_for_ready_services():
    deps = depends("demo")
    for svc in CASB_SERVICES + ["saas-sim"]:
        assert deps.get(svc) == "service_healthy", f"demo does not wait for {svc}"


@pytest.mark.parametrize("target", ["runtime", "sim"])
def test_image_runs_as_10001_with_exec_form_entrypoint(target):
    instructions = dockerfile_stages()[target]
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] == SERVICE_USER, f"{target}: USER {users}"
    for word in ("ENTRYPOINT", "CMD"):
        values = [rest for w, rest in instructions if w == word]
        assert values, f"{target}: no {word}"
        argv = json.loads(values[-1])  # shell form is not JSON
        assert isinstance(argv, list) and argv, f"{target}: {word} {values[-1]}"


def test_runtime_image_holds_the_four_services():
    assert stage_binaries("runtime") == {f"casb-{s}" for s in CASB_SERVICES}
    assert stage_binaries("sim") == {"casb-saas-sim"}
    # The default stage (`docker build` without --target) is the services' image.
    assert list(dockerfile_stages())[-1] == "runtime"


def code_topics():
    """{name: partitions} of casb_kafka_topics (common/src/kafka.c)."""
    macros = dict(re.findall(r'#define (CASB_\w+) "([^"]*)"',
                             (ROOT / "common/include/casb/kafka.h").read_text()))
    kafka_c = (ROOT / "common/src/kafka.c").read_text()
    table = re.search(r"casb_kafka_topics\[\] = \{(.*?)\n\};", kafka_c, re.S)
    assert table, "casb_kafka_topics not found in common/src/kafka.c"
    topics = {}
    for parts, count in re.findall(r"\{((?:CASB_\w+\s*)+),\s*(\d+)\}", table.group(1)):
        topics["".join(macros[m] for m in parts.split())] = int(count)
    return topics


def test_deploy_local_creates_the_same_topics():
    local = {}
    for spec in lib_sh_value("CASB_KAFKA_TOPICS").split():
        topic, parts = spec.split(":")
        local[topic] = int(parts)
        local[topic + ".dlq"] = 1  # casb_kafka_topics (lib.sh): each with a one-partition .dlq
    assert code_topics() == local
