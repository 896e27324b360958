"""The Datasette plugin in process (Datasette's own test client); the browser tests
serve it for real."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from datasette.app import Datasette

from .conftest import Files

pytestmark = pytest.mark.asyncio


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def get(ds: Datasette, path: str, status: int = 200) -> str:
    response = await ds.client.get(path)
    assert response.status_code == status, response.text[:500]
    return response.text


@pytest.fixture(params=["mutable", "immutable"])
def ds(request: pytest.FixtureRequest, files: Files) -> Datasette:
    """The four trace files served the two ways Datasette opens files."""
    paths = [str(files.bug), str(files.hostile), str(files.long_a), str(files.long_b)]
    if request.param == "immutable":
        return Datasette(immutables=paths)
    return Datasette(paths)


class TestRegistration:
    """``datasette bug.db`` finds the plugin through its entry point."""

    async def test_listed(self, ds: Datasette) -> None:
        plugins = (await ds.client.get("/-/plugins.json")).json()
        ours = [p for p in plugins if p["name"] == "packr-replay"]
        assert ours
        assert {"prepare_connection", "render_cell", "register_routes"} <= set(
            ours[0]["hooks"]
        )


class TestFunctions:
    """The packr SQL functions on every connection."""

    async def test_values_by_event(self, ds: Datasette) -> None:
        sql = "select packr_text(packr_output(1, 6)) as t, packr_kind(packr_input(1, 0)) as k"
        rows = (await ds.client.get("/bug.json", params={"sql": sql, "_shape": "array"})).json()
        assert rows == [
            {
                "t": 'report{greeting: "Hello, Ada", time: 1700000000000000000u64, roll: 0u64, '
                'user: some<string>("ada"), lucky: false}',
                "k": "string",
            }
        ]

    async def test_null_for_what_is_not_there(self, ds: Datasette) -> None:
        sql = "select packr_input(1, 99999) as a, packr_input(7, 0) as b, packr_text(x'00') as c"
        rows = (await ds.client.get("/bug.json", params={"sql": sql, "_shape": "array"})).json()
        assert rows == [{"a": None, "b": None, "c": None}]


class TestCells:
    """CGRF blobs render as packr text, cut with a link to the whole value."""

    async def test_small_value(self, ds: Datasette) -> None:
        html = await get(ds, "/bug?sql=select+packr_input(1,+0)+as+v")
        assert '<span class="packr-value"><span class="v">&quot;Ada&quot;</span></span>' in html

    async def test_cut_value_links_to_the_whole(self, ds: Datasette) -> None:
        sql = "select x'" + _big_string_hex() + "' as v"
        html = await get(ds, f"/bug?sql={sql}")
        link = re.search(r'<a class="more" href="(/-/packr/value/[0-9a-f]{64})">show all</a>', html)
        assert link is not None
        whole = await get(ds, link.group(1))
        assert "y" * 5000 in whole

    async def test_blobs_in_a_table(self, ds: Datasette) -> None:
        html = await get(ds, "/bug/modules")  # the guest's package metadata, a CGRF record
        cell = re.search(r'<span class="packr-value"><span class="v">(package-metadata\{.*?)</span>', html)
        assert cell is not None
        assert "demo:host/clock" in cell.group(1)
        assert re.search(r'<a class="more" href="/-/packr/value/[0-9a-f]{64}">show all</a>', html)

    async def test_action_menus(self, ds: Datasette) -> None:
        for path in ("/bug", "/bug/traces", "/bug/segments"):
            assert 'href="/-/packr/bug"' in await get(ds, path), path

    async def test_unknown_value(self, ds: Datasette) -> None:
        assert "no longer held" in await get(ds, "/-/packr/value/" + "0" * 64, 404)

    async def test_trace_ids_link_to_their_pages(self, ds: Datasette) -> None:
        html = await get(ds, "/bug?sql=select+1+as+trace_id")
        assert '<a href="/-/packr/bug/trace/1" title="timeline">1</a>' in html


def _big_string_hex() -> str:
    from packr_replay.abi import String, encode

    return encode(String("y" * 5000)).hex()


class TestPages:
    """The traces list, a trace, an event, a diff."""

    async def test_traces_list(self, ds: Datasette) -> None:
        html = await get(ds, "/-/packr/bug")
        assert '<a href="/-/packr/bug/trace/2">2</a>' in html
        assert "second" in html
        assert 'action="/-/packr/bug/diff"' in html

    async def test_trace_page(self, ds: Datasette) -> None:
        html = await get(ds, "/-/packr/bug/trace/1")
        assert len(re.findall(r'<tr id="row-\d+"', html)) == 14
        assert '<span class="verdict ok">ok</span>' in html
        assert 'href="/-/packr/bug/trace/1/event/6"' in html
        assert 'data-mode="server"' in html
        assert "<h2>Values</h2>" not in html

    async def test_trace_page_filters(self, ds: Datasette) -> None:
        html = await get(ds, "/-/packr/long_a/trace/1?interface=demo:host/io&function=write&start=100")
        seqs = [int(s) for s in re.findall(r'<tr id="row-(\d+)"', html)]
        assert seqs == list(range(102, 2000, 4))[:475]
        html = await get(ds, "/-/packr/long_a/trace/1")
        assert len(re.findall(r'<tr id="row-\d+"', html)) == 500
        assert 'href="/-/packr/long_a/trace/1?start=500">next page from #500' in html

    async def test_event_page(self, ds: Datasette) -> None:
        html = await get(ds, "/-/packr/bug/trace/1/event/6")
        assert "event #6: return run" in html
        assert "greeting: &quot;Hello, Ada&quot;" in html
        await get(ds, "/-/packr/bug/trace/1/event/14", 404)
        await get(ds, "/-/packr/bug/trace/9", 404)

    async def test_diff_page(self, ds: Datasette) -> None:
        html = await get(ds, "/-/packr/bug/diff?a=1&b=2")
        assert 'id="first-divergence"' in html
        assert "different: 8 changed" in html
        html = await get(ds, "/-/packr/long_a/diff?a=1&b=1&b_db=long_b")
        assert "1 changed, 1 inserted" in html
        assert 'href="/-/packr/long_b/trace/1/event/1201"' in html  # b's events: b's file
        await get(ds, "/-/packr/bug/diff?a=1", 400)

    async def test_hostile_trace(self, ds: Datasette) -> None:
        for path in ("/-/packr/hostile", "/-/packr/hostile/trace/1", "/-/packr/hostile/trace/1/event/1"):
            html = await get(ds, path)
            assert len(re.findall(r"<script\b", html)) == 1, path
            assert "<img" not in html
            assert "<svg" not in html


class TestReadOnly:
    """The plugin never writes and needs no index."""

    async def test_files_unchanged(self, files: Files) -> None:
        paths = [files.bug, files.long_a, files.long_b]
        before = [digest(p) for p in paths]
        for ds in (Datasette([str(p) for p in paths]), Datasette(immutables=[str(p) for p in paths])):
            for url in ("/-/packr/bug/trace/1", "/-/packr/bug/trace/1/event/3",
                        "/-/packr/long_a/diff?a=1&b=1&b_db=long_b",
                        "/bug?sql=select+packr_text(packr_input(1,+0))"):  # fmt: skip
                await get(ds, url)
        assert [digest(p) for p in paths] == before

    async def test_never_indexed(self, files: Files) -> None:
        with closing(sqlite3.connect(f"file:{files.long_a}?mode=ro", uri=True)) as conn:
            assert conn.execute("select count(*) from event_index").fetchone() == (0,)

    async def test_not_a_trace_store(self, tmp_path: Path) -> None:
        other = tmp_path / "other.db"
        with closing(sqlite3.connect(other)) as conn:
            conn.execute("create table t (x)")
            conn.commit()
        ds = Datasette([str(other)])
        html = await get(ds, "/-/packr/other/trace/1", 400)
        assert "not a packr-replay trace store" in html or "not a trace store" in html
        rows = (await ds.client.get("/other.json", params={"sql": "select packr_input(1, 0) as v",
                                                           "_shape": "array"})).json()  # fmt: skip
        assert rows == [{"v": None}]


class TestGuarded:
    """Datasette's connections get the store's own guard (storage.sqlite.distrust_schema)."""

    async def test_trusted_schema_off(self, ds: Datasette) -> None:
        db = ds.get_database("bug")
        value = await db.execute_fn(lambda conn: conn.execute("pragma trusted_schema").fetchone()[0])
        assert value == 0

    async def test_a_view_in_the_file_cannot_call_functions(self, tmp_path: Path) -> None:
        other = tmp_path / "other.db"
        with closing(sqlite3.connect(other)) as conn:
            conn.execute("create view v as select packr_kind(x'00') as k")
            conn.commit()
        ds = Datasette([str(other)])
        direct = (await ds.client.get("/other.json", params={"sql": "select packr_kind(x'00') as k",
                                                             "_shape": "array"})).json()  # fmt: skip
        assert direct == [{"k": None}]  # the query itself may call them
        response = await ds.client.get("/other.json", params={"sql": "select k from v"})
        assert response.status_code == 400
        assert "unsafe use of packr_kind()" in response.text

    async def test_defensive_mode_where_python_offers_it(
        self, files: Files, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Python 3.12+ has ``Connection.setconfig``; the hook sets the store's options."""
        from packr_replay import datasette_plugin

        options = {"SQLITE_DBCONFIG_DEFENSIVE": 1010, "SQLITE_DBCONFIG_TRUSTED_SCHEMA": 1017,
                   "SQLITE_DBCONFIG_ENABLE_TRIGGER": 1003}  # fmt: skip
        for name, number in options.items():
            monkeypatch.setattr(sqlite3, name, number, raising=False)

        class Connection:  # a 3.11 connection with 3.12's setconfig
            def __init__(self, conn: sqlite3.Connection) -> None:
                self.conn = conn
                self.config: dict[int, bool] = {}

            def setconfig(self, option: int, value: bool) -> None:
                self.config[option] = value

            def __getattr__(self, name: str) -> object:
                return getattr(self.conn, name)

        with closing(sqlite3.connect(f"file:{files.bug}?mode=ro", uri=True)) as raw:
            conn = Connection(raw)
            datasette_plugin.prepare_connection(conn, "bug", Datasette([str(files.bug)]))
            assert conn.config == {1010: True, 1017: False, 1003: False}
            assert raw.execute("pragma trusted_schema").fetchone() == (0,)
            assert raw.execute("select packr_kind(packr_input(1, 0))").fetchone() == ("string",)


async def test_verdict_follows_the_file(files: Files, tmp_path: Path) -> None:
    """verify's verdict is remembered between page views only while the file is unchanged."""
    import shutil

    from .traces import tamper

    path = tmp_path / "t.db"
    shutil.copy(files.long_a, path)
    ds = Datasette([str(path)])
    assert "hash chain intact" in await get(ds, "/-/packr/t/trace/1")
    tamper(path, 1, 37)
    html = await get(ds, "/-/packr/t/trace/1")
    assert "TAMPERED at event #37" in html
    assert "reading stopped: " in html
