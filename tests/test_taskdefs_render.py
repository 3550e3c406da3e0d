"""taskdefs render: the example settings give documents ECS accepts and lint clean; bad
settings give one line each and write nothing."""

import copy
import json
import tomllib
from pathlib import Path

import pytest

from taskdefs import apimodel
from taskdefs.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "ecs" / "settings.example.toml"
ROLES = ("api-server", "scheduler", "dag-processor", "triggerer", "worker")
AUTOSCALING_FILES = {
    "worker.scalable-target.json",
    "worker-follow-backlog.scaling-policy.json",
    "worker-idle.scaling-policy.json",
    "worker-backlog.alarm.json",
    "worker-idle.alarm.json",
    "worker-off-hours.scheduled-action.json",
    "worker-on-hours.scheduled-action.json",
}
EXPECTED_FILES = {
    *(f"{role}.task-definition.json" for role in (*ROLES, "db-migrate")),
    *(f"{role}.service.json" for role in ROLES),
    *(f"{role}.task-role.policy.json" for role in ROLES),
    "api-server.target-group.json",
    "execution-role.policy.json",
    "ecs-tasks.trust-policy.json",
    "vpc-endpoints.json",
    *AUTOSCALING_FILES,
}


def example() -> dict:
    return tomllib.loads(EXAMPLE.read_text())


def render(tmp_path: Path, settings: dict, capsys) -> tuple[int, Path, str]:
    """Render `settings` (written as JSON) into tmp_path/out: exit code, out dir, stderr."""
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings))
    out = tmp_path / "out"
    code = main(["render", "--settings", str(path), "--out", str(out)])
    return code, out, capsys.readouterr().err


def load(out: Path, name: str) -> dict:
    return json.loads((out / name).read_text())


def containers(task: dict) -> dict[str, dict]:
    return {container["name"]: container for container in task["containerDefinitions"]}


def test_the_example_renders_every_document_and_each_passes_the_api_model(tmp_path, capsys):
    code = main(["render", "--settings", str(EXAMPLE), "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    assert {path.name for path in tmp_path.iterdir()} == EXPECTED_FILES
    for kind, suffix in (("task-definition", ".task-definition.json"), ("service", ".service.json")):
        for path in tmp_path.glob(f"*{suffix}"):
            assert apimodel.problems(kind, json.loads(path.read_text())) == [], path.name
    assert apimodel.problems("target-group", load(tmp_path, "api-server.target-group.json")) == []
    for name in AUTOSCALING_FILES:
        kind = name.removesuffix(".json").rsplit(".", 1)[-1]
        assert apimodel.problems(kind, load(tmp_path, name)) == [], name
    assert main(["lint", *map(str, tmp_path.glob("*.json"))]) == 0


def test_the_workers_follow_the_backlog_on_spot_and_sleep_off_hours(tmp_path, capsys):
    main(["render", "--settings", str(EXAMPLE), "--out", str(tmp_path)])
    target = load(tmp_path, "worker.scalable-target.json")
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (
        "service/airflow/airflow-worker",
        0,
        10,
    )
    follow = load(tmp_path, "worker-follow-backlog.scaling-policy.json")["StepScalingPolicyConfiguration"]
    assert follow["AdjustmentType"] == "ExactCapacity" and len(follow["StepAdjustments"]) == 10
    # the alarm fires at DesiredWorkers >= 1; a reading of n (n - 1 above it) sets n workers
    for n in range(1, 12):
        step = next(
            s for s in follow["StepAdjustments"]
            if s["MetricIntervalLowerBound"] <= n - 1 < s.get("MetricIntervalUpperBound", float("inf"))
        )  # fmt: skip
        assert step["ScalingAdjustment"] == min(n, 10)
    backlog, idle = load(tmp_path, "worker-backlog.alarm.json"), load(tmp_path, "worker-idle.alarm.json")
    assert (backlog["MetricName"], backlog["Namespace"]) == ("DesiredWorkers", "airflow-ecs/workers")
    assert (backlog["EvaluationPeriods"], backlog["TreatMissingData"]) == (1, "notBreaching")
    assert (idle["EvaluationPeriods"], idle["DatapointsToAlarm"]) == (15, 15)  # workers.idle_minutes
    assert idle["TreatMissingData"] == "missing"  # no reading is no reason to scale in
    off = load(tmp_path, "worker-off-hours.scheduled-action.json")
    assert (off["Schedule"], off["Timezone"], off["ScalableTargetAction"]) == (
        "cron(0 20 ? * MON-FRI *)",
        "Europe/Dublin",
        {"MinCapacity": 0, "MaxCapacity": 0},
    )
    service = load(tmp_path, "worker.service.json")
    assert service["desiredCount"] == 0
    assert service["capacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE", "base": 0, "weight": 1},
        {"capacityProvider": "FARGATE_SPOT", "weight": 4},
    ]
    metrics = containers(load(tmp_path, "scheduler.task-definition.json"))["scaling-metrics"]
    env = {variable["name"]: variable["value"] for variable in metrics["environment"]}
    assert (env["SCALING_DEPLOYMENT"], env["SCALING_WORKER_CONCURRENCY"], env["SCALING_MAX_WORKERS"]) == (
        "airflow",
        "8",
        "10",
    )
    worker = containers(load(tmp_path, "worker.task-definition.json"))["airflow"]
    worker_env = {variable["name"]: variable["value"] for variable in worker["environment"]}
    assert worker_env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "8"  # what the metric divides by


def test_without_schedules_no_scheduled_action_is_written_and_a_stale_one_goes(tmp_path, capsys):
    settings = example()
    del settings["workers"]["off_hours"], settings["workers"]["on_hours"]
    settings["workers"]["max"] = 50
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "worker-off-hours.scheduled-action.json").write_text("{}")  # an earlier render's
    code, out, err = render(tmp_path, settings, capsys)
    assert code == 0, err
    written = {path.name for path in out.iterdir()}
    assert not {n for n in written if n.endswith(".scheduled-action.json")}
    steps = load(out, "worker-follow-backlog.scaling-policy.json")["StepScalingPolicyConfiguration"]
    assert len(steps["StepAdjustments"]) == 20  # Application Auto Scaling's limit per policy
    assert steps["StepAdjustments"][-1] == {"MetricIntervalLowerBound": 48, "ScalingAdjustment": 50}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_starts_after_its_dags_are_synced_and_keeps_them_fresh(tmp_path, capsys, role):
    main(["render", "--settings", str(EXAMPLE), "--out", str(tmp_path)])
    task = load(tmp_path, f"{role}.task-definition.json")
    by_name = containers(task)
    extra = ["scaling-metrics"] if role == "scheduler" else []  # the workers' backlog, beside the scheduler
    assert list(by_name) == ["dags-init", "airflow", "dags-sync", *extra]
    init, airflow, sidecar = by_name["dags-init"], by_name["airflow"], by_name["dags-sync"]
    assert init["command"] == ["sync", "--once"] and init["essential"] is False
    assert airflow["dependsOn"] == [{"containerName": "dags-init", "condition": "SUCCESS"}]
    assert airflow["essential"] is True and airflow["command"] == [role]
    assert sidecar["command"] == ["run"] and sidecar["essential"] is False
    assert sidecar["dependsOn"] == [{"containerName": "airflow", "condition": "START"}]
    assert sidecar["restartPolicy"]["enabled"] is True
    assert airflow["healthCheck"]["command"] == ["CMD", "python", "-m", "healthchecks", role]
    assert airflow["healthCheck"]["startPeriod"] >= 120
    assert {m["sourceVolume"]: m["readOnly"] for m in airflow["mountPoints"]}["dags"] is True
    assert all(c["user"] == "50000:0" and c["readonlyRootFilesystem"] for c in by_name.values())
    assert airflow["stopTimeout"] == (120 if role == "worker" else 30)


def test_secrets_reach_each_role_only_through_secrets_manager_arns(tmp_path, capsys):
    main(["render", "--settings", str(EXAMPLE), "--out", str(tmp_path)])
    secrets = example()["secrets"]
    for role in ROLES:
        airflow = containers(load(tmp_path, f"{role}.task-definition.json"))["airflow"]
        injected = {s["name"]: s["valueFrom"] for s in airflow["secrets"]}
        assert injected["AIRFLOW__API_AUTH__JWT_SECRET"] == secrets["jwt_secret"]
        assert ("AIRFLOW_REDIS_PASSWORD" in injected) == (role in ("scheduler", "worker"))
        assert ("AIRFLOW__API__SECRET_KEY" in injected) == (role == "api-server")
        assert not set(injected.values()) & {e["value"] for e in airflow["environment"]}


def test_only_the_worker_service_uses_fargate_spot_and_none_has_a_public_ip(tmp_path, capsys):
    main(["render", "--settings", str(EXAMPLE), "--out", str(tmp_path)])
    for role in ROLES:
        service = load(tmp_path, f"{role}.service.json")
        providers = {p["capacityProvider"] for p in service["capacityProviderStrategy"]}
        assert ("FARGATE_SPOT" in providers) == (role == "worker")
        assert service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
        assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
            "enable": True,
            "rollback": True,
        }
    api = load(tmp_path, "api-server.service.json")
    assert api["loadBalancers"][0]["containerPort"] == 8080 and api["healthCheckGracePeriodSeconds"] >= 120


def test_task_roles_read_only_the_dag_prefix_and_write_only_the_log_prefix(tmp_path, capsys):
    main(["render", "--settings", str(EXAMPLE), "--out", str(tmp_path)])
    dags, logs = "arn:aws:s3:::example-airflow-dags", "arn:aws:s3:::example-airflow-logs"
    for role in ROLES:
        s3 = [
            statement
            for statement in load(tmp_path, f"{role}.task-role.policy.json")["Statement"]
            if any(action.startswith("s3:") for action in statement["Action"])
        ]
        grants = {(action, statement["Resource"]) for statement in s3 for action in statement["Action"]}
        writes_logs = role in ("worker", "triggerer")
        reads_logs = writes_logs or role == "api-server"
        # the api-server reads the ALB's signing keys, and asks for one it lacks
        login_keys = [
            ("s3:GetObject", f"{dags}/alb-auth/keys.json"),
            ("s3:PutObject", f"{dags}/alb-auth/wanted/*"),
        ]
        assert grants == {
            ("s3:GetObject", f"{dags}/dags/*"),
            ("s3:ListBucket", dags),
            *([("s3:GetObject", f"{logs}/logs/*"), ("s3:ListBucket", logs)] if reads_logs else []),
            *([("s3:PutObject", f"{logs}/logs/*")] if writes_logs else []),
            *(login_keys if role == "api-server" else []),
        }, role
        for statement in s3:
            if statement["Action"] == ["s3:ListBucket"]:
                prefix = "dags" if statement["Resource"] == dags else "logs"
                assert statement["Condition"] == {"StringLike": {"s3:prefix": [f"{prefix}/*"]}}
    execution = load(tmp_path, "execution-role.policy.json")["Statement"]
    secret_grant = next(s for s in execution if s["Action"] == ["secretsmanager:GetSecretValue"])
    assert sorted(secret_grant["Resource"]) == sorted(
        v for k, v in example()["secrets"].items() if k != "backend_prefixes"
    )
    kms = next(s for s in execution if s["Action"] == ["kms:Decrypt"])
    assert kms["Resource"] == example()["kms"]["key_arn"]


def test_the_api_server_checks_the_albs_login_and_the_other_roles_keep_the_images_auth_manager(
    tmp_path, capsys
):
    settings = example()
    del settings["auth"]["viewer_groups"]
    settings["auth"]["op_groups"] = ["airflow-operators", "on-call"]
    settings["auth"]["logout_url"] = "https://login.example.com/oauth2/default/v1/logout"
    code, out, err = render(tmp_path, settings, capsys)
    assert code == 0, err
    auth = example()["auth"]
    api = containers(load(out, "api-server.task-definition.json"))["airflow"]
    env = {variable["name"]: variable["value"] for variable in api["environment"]}
    assert {name: value for name, value in env.items() if "AUTH" in name} == {
        "AIRFLOW__CORE__AUTH_MANAGER": "albauth.manager.AlbAuthManager",
        "AIRFLOW__ALB_AUTH__KEY_STORE": "s3://example-airflow-dags/alb-auth/keys.json",
        "AIRFLOW__ALB_AUTH__ALB_ARN": auth["alb_arn"],
        "AIRFLOW__ALB_AUTH__ISSUER": auth["issuer"],
        "AIRFLOW__ALB_AUTH__CLIENT_ID": auth["client_id"],
        "AIRFLOW__ALB_AUTH__GROUPS_CLAIM": "groups",
        "AIRFLOW__ALB_AUTH__ADMIN_GROUPS": "airflow-admins",
        "AIRFLOW__ALB_AUTH__OP_GROUPS": "airflow-operators,on-call",
        "AIRFLOW__ALB_AUTH__USER_GROUPS": "data-engineers",
        "AIRFLOW__ALB_AUTH__VIEWER_GROUPS": "",
        "AIRFLOW__ALB_AUTH__LOGOUT_URL": "https://login.example.com/oauth2/default/v1/logout",
    }
    for role in ROLES:
        if role != "api-server":
            airflow = containers(load(out, f"{role}.task-definition.json"))["airflow"]
            assert not any("AUTH_MANAGER" in variable["name"] for variable in airflow["environment"]), role


def test_a_task_local_dag_volume_needs_no_efs(tmp_path, capsys):
    settings = example()
    settings["dags"] = {"bucket": "example-airflow-dags", "volume": "task"}
    settings["architecture"] = "X86_64"
    code, out, err = render(tmp_path, settings, capsys)
    assert code == 0, err
    task = load(out, "scheduler.task-definition.json")
    assert task["volumes"] == [{"name": "dags"}]
    assert not any("efsVolumeConfiguration" in volume for volume in task["volumes"])
    assert task["runtimePlatform"]["cpuArchitecture"] == "X86_64"
    assert "elasticfilesystem" not in (out / "scheduler.task-role.policy.json").read_text()


def test_without_a_target_group_arn_the_api_server_service_waits_and_a_stale_one_goes(tmp_path, capsys):
    settings = example()
    code, out, _ = render(tmp_path, settings, capsys)
    assert code == 0 and (out / "api-server.service.json").exists()
    del settings["api"]["target_group_arn"]
    code, out, err = render(tmp_path, settings, capsys)
    assert code == 0
    assert not (out / "api-server.service.json").exists()
    assert (out / "api-server.target-group.json").exists() and (out / "scheduler.service.json").exists()
    assert "not rendered: api-server.service.json: api.target_group_arn is not set" in err


def test_ecs_exec_needs_the_ssmmessages_endpoint(tmp_path, capsys):
    settings = example()
    settings["ecs_exec"] = True
    code, out, err = render(tmp_path, settings, capsys)
    assert code == 2 and not out.exists()
    assert err.strip().splitlines() == [
        f"taskdefs: error: {tmp_path / 'settings.json'}: network.vpc_endpoints: no VPC endpoint for "
        "ssmmessages, needed because airflow-api-server enables ECS Exec"
    ]
    settings["network"]["vpc_endpoints"].append("ssmmessages")
    code, out, err = render(tmp_path, settings, capsys)
    assert code == 0, err
    assert load(out, "worker.service.json")["enableExecuteCommand"] is True
    # The agent ECS Exec starts in the container writes its state and logs: volumes, the root stays read-only.
    airflow = containers(load(out, "worker.task-definition.json"))["airflow"]
    writable = {m["containerPath"] for m in airflow["mountPoints"] if not m["readOnly"]}
    assert writable == {"/var/lib/amazon", "/var/log/amazon"} and airflow["readonlyRootFilesystem"] is True
    assert "ssmmessages:OpenDataChannel" in (out / "worker.task-role.policy.json").read_text()


def test_without_a_kms_key_no_role_gets_kms_and_no_kms_endpoint_is_needed(tmp_path, capsys):
    settings = example()
    del settings["kms"]
    settings["network"]["vpc_endpoints"].remove("kms")
    code, out, err = render(tmp_path, settings, capsys)
    assert code == 0, err
    assert not any("kms:" in path.read_text() for path in out.glob("*.policy.json"))


def _without(path: str):
    def edit(settings: dict) -> None:
        *parents, key = path.split(".")
        node = settings
        for parent in parents:
            node = node[parent]
        del node[key]

    return edit


def _set(path: str, value):
    def edit(settings: dict) -> None:
        *parents, key = path.split(".")
        node = settings
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value

    return edit


EXAMPLE_DB_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!cluster-0a1b2c3d-AbCdEf"
OTHER_REGION_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:airflow/jwt-secret-AbCdEf"
BAD_SETTINGS = {
    "missing key": (_without("secrets.jwt_secret"), "secrets.jwt_secret: missing"),
    "malformed ARN": (
        _set("secrets.fernet_key", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:airflow/fernet"),
        "secrets.fernet_key: not a complete secret ARN",
    ),
    "SSM parameter instead of a secret": (
        _set("secrets.database", "arn:aws:ssm:eu-west-1:123456789012:parameter/airflow/db"),
        "secrets.database: not a complete secret ARN",
    ),
    "secret in another region": (
        _set("secrets.jwt_secret", OTHER_REGION_SECRET),
        "secrets.jwt_secret: is in region us-east-1, not eu-west-1",
    ),
    "image in another region": (
        _set("images.airflow", "123456789012.dkr.ecr.us-east-1.amazonaws.com/airflow-ecs/airflow:3.1.8-1"),
        "images.airflow: is in us-east-1, not eu-west-1: the tasks reach ECR only in their own region",
    ),
    "image outside ECR": (
        _set("images.s3sync", "docker.io/library/python:3.13"),
        "images.s3sync: not an ECR image",
    ),
    "image tagged latest": (
        _set("images.s3sync", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/airflow-ecs/s3sync:latest"),
        "images.s3sync: is tagged latest",
    ),
    "unknown region": (_set("region", "eu-west-9"), "region: not an AWS region with ECS"),
    "cpu/memory pair Fargate rejects": (
        _set("sizes.worker.memory", 1024),
        "sizes.worker: Fargate has no 2048 cpu / 1024 MiB task: with 2048 cpu, memory is 4096 to 16384 MiB",
    ),
    "cpu Fargate does not offer": (
        _set("sizes.scheduler.cpu", 1000),
        "sizes.scheduler: cpu 1000 is not a Fargate size",
    ),
    "malformed subnet": (_set("network.subnets", ["subnet-xyz"]), "network.subnets: not a subnet id"),
    "unknown key": (_set("dags.buckt", "typo"), "dags.buckt: unknown key"),
    "wrong type": (_set("sizes.scheduler.count", "2"), "sizes.scheduler.count: must be a whole number"),
    "a worker count (the backlog sets it)": (
        _set("sizes.worker.count", 2),
        "sizes.worker.count: workers follow the backlog: set workers.min, workers.max",
    ),
    "min over max": (_set("workers.min", 11), "workers.min: must be <= workers.max (10): 11"),
    "one schedule of two": (_without("workers.on_hours"), "workers.off_hours: set both"),
    "a cron without ?": (_set("workers.off_hours", "cron(0 20 * * MON-FRI *)"), "cron needs ? in"),
    "a five-field cron": (_set("workers.on_hours", "cron(0 7 * * ?)"), "workers.on_hours: not a schedule"),
    "an unknown time zone": (_set("workers.timezone", "Europe/Atlantis"), "workers.timezone: not an IANA"),
    "no capacity provider weight": (
        lambda s: (_set("workers.spot_weight", 0)(s), _set("workers.on_demand_weight", 0)(s)),
        "workers.spot_weight: spot_weight and on_demand_weight cannot both be 0",
    ),
    "too many workers": (_set("workers.max", 5000), "workers.max: must be 1 to 1000"),
    "EFS id with a task-local volume": (
        lambda s: (_set("dags.volume", "task")(s), _without("dags.efs_access_point_id")(s)),
        'dags.efs_file_system_id: only with dags.volume = "efs"',
    ),
    "sync mode auto": (_set("dags.mode", "auto"), "dags.mode: must be one of manifest, listing"),
    "a key of the database secret": (
        _set("secrets.database", EXAMPLE_DB_SECRET + ":password::"),
        "secrets.database: must be the whole secret",
    ),
    "a wildcard in a prefix": (_set("dags.prefix", "dags/*"), "dags.prefix: not an S3 prefix"),
    "a secret of another partition": (
        _set(
            "secrets.fernet_key",
            OTHER_REGION_SECRET.replace("arn:aws:", "arn:aws-cn:").replace("us-east-1", "eu-west-1"),
        ),
        "secrets.fernet_key: is in partition aws-cn, not aws of eu-west-1",
    ),
    "a string where a table belongs": (_set("sizes", "large"), "sizes: must be a table"),
    "a table where a string belongs": (_set("region", {"name": "eu-west-1"}), "region: must be a string"),
    "a malformed endpoint name": (
        _set("network.vpc_endpoints", ["s3", "garbage!!"]),
        "network.vpc_endpoints: not a VPC endpoint",
    ),
    "bad bucket name": (_set("logs.bucket", "Logs_Bucket"), "logs.bucket: not an S3 bucket name"),
    "a network load balancer for the login": (
        _set(
            "auth.alb_arn",
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/airflow-api/0123456789abcdef",
        ),
        "auth.alb_arn: not a complete application-load-balancer ARN",
    ),
    "an issuer over http": (
        _set("auth.issuer", "http://login.example.com"),
        "auth.issuer: must be an https:// URL",
    ),
    "no admin group": (_without("auth.admin_groups"), "auth.admin_groups: missing"),
    "a group name with a comma": (
        _set("auth.user_groups", ["engineers,analysts"]),
        "auth.user_groups: not a group name (no commas, no surrounding spaces)",
    ),
    "a logout URL that is not a URL": (
        _set("auth.logout_url", "logout"),
        "auth.logout_url: must be an https:// URL",
    ),
    "the DAG prefix on the login keys": (
        _set("dags.prefix", "alb-auth/dags"),
        "dags.prefix: alb-auth/ holds the ALB's login keys",
    ),
    "api url with a path": (
        _set("api.url", "https://airflow.example.com/ui"),
        "api.url: must be the api-server's URL",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_a_bad_setting_is_one_line_naming_its_key_and_nothing_is_written(tmp_path, capsys, case):
    edit, expected = BAD_SETTINGS[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "scheduler.task-definition.json").write_text("previous render\n")
    settings = example()
    edit(settings)
    code, out, err = render(tmp_path, settings, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"taskdefs: error: {tmp_path / 'settings.json'}: ")
    assert expected in lines[0]
    assert [path.name for path in out.iterdir()] == ["scheduler.task-definition.json"]
    assert (out / "scheduler.task-definition.json").read_text() == "previous render\n"


def test_settings_that_are_not_toml_are_one_line(tmp_path, capsys):
    path = tmp_path / "settings.toml"
    path.write_text("name = \n")
    assert main(["render", "--settings", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not valid TOML" in err[0]
    assert not (tmp_path / "out").exists()


def test_two_bad_settings_are_two_lines(tmp_path, capsys):
    settings = copy.deepcopy(example())
    del settings["account"]
    settings["sizes"]["triggerer"]["memory"] = 3000
    code, _, err = render(tmp_path, settings, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 2


def test_a_china_region_gets_its_partition_and_domain_everywhere(tmp_path, capsys):
    text = EXAMPLE.read_text().replace("eu-west-1", "cn-north-1").replace("arn:aws:", "arn:aws-cn:")
    settings = tomllib.loads(text.replace(".amazonaws.com/", ".amazonaws.com.cn/"))
    code, out, err = render(tmp_path, settings, capsys)
    assert code == 0, err
    execution = (out / "execution-role.policy.json").read_text()
    assert "arn:aws-cn:ecr:cn-north-1:123456789012:repository/airflow-ecs/airflow" in execution
    assert "secretsmanager.cn-north-1.amazonaws.com.cn" in execution
    rendered = "".join(path.read_text() for path in out.glob("*.json"))
    assert "arn:aws:" not in rendered


def test_a_write_that_fails_changes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["render", "--settings", str(EXAMPLE), "--out", str(out)]) == 0
    before = {path.name: path.read_text() for path in out.iterdir()}
    settings = example()
    settings["name"] = "airflow2"
    settings["dags"]["prefix"] = "dags2"
    elsewhere = tmp_path / "elsewhere"
    changed_settings = tmp_path / "changed.json"
    changed_settings.write_text(json.dumps(settings))
    assert main(["render", "--settings", str(changed_settings), "--out", str(elsewhere)]) == 0
    differ = [name for name, text in before.items() if (elsewhere / name).read_text() != text]
    assert len(differ) >= 15  # so a partial write would show
    (out / "worker.service.json").unlink()
    (out / "worker.service.json").mkdir()  # in the way of one file
    capsys.readouterr()
    assert main(["render", "--settings", str(changed_settings), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"taskdefs: error: {out / 'worker.service.json'}: cannot write: a directory is in the way; "
        "nothing written"
    ]
    after = {path.name: path.read_text() for path in out.iterdir() if path.is_file()}
    assert after == {name: text for name, text in before.items() if name != "worker.service.json"}
