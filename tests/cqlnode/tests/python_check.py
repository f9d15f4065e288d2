"""The node seen by the DataStax Python driver (cassandra-driver): connect (with its protocol
downgrade from v5 to v4), SELECT * FROM system.local, schema metadata, prepared inserts, a
paged SELECT * and an unsupported statement. Usage: python_check.py HOST PORT"""
import datetime
import sys

from cassandra import InvalidRequest
from cassandra.cluster import Cluster
from cassandra.policies import RoundRobinPolicy
from cassandra.query import SimpleStatement

host, port = sys.argv[1], int(sys.argv[2])
cluster = Cluster([host], port=port, load_balancing_policy=RoundRobinPolicy())
s = cluster.connect()
assert cluster.protocol_version == 4, cluster.protocol_version

local = s.execute("SELECT * FROM system.local").one()
assert local.key == "local" and local.release_version == "4.0.11", local
assert local.data_center == "datacenter1" and set(local.tokens) == {"0"}, local
assert list(s.execute("SELECT * FROM system.peers")) == []

s.execute("CREATE KEYSPACE IF NOT EXISTS py WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
s.execute("CREATE TABLE IF NOT EXISTS py.t (k text, c int, v blob, d double, ts timestamp, ok boolean, "
          "PRIMARY KEY (k, c)) WITH CLUSTERING ORDER BY (c DESC) AND default_time_to_live = 3600")
p = s.prepare("INSERT INTO py.t (k, c, v, d, ts, ok) VALUES (?, ?, ?, ?, ?, ?)")
for i in range(5):
    s.execute(p, ("a", i, bytes([i]) * 3, i / 2, datetime.datetime(2024, 1, 1, 0, 0, i), i % 2 == 0))

rows = list(s.execute(SimpleStatement("SELECT * FROM py.t", fetch_size=2)))
assert [r.c for r in rows] == [4, 3, 2, 1, 0], rows
assert rows[0].v == b"\x04\x04\x04" and rows[0].d == 2.0 and rows[0].ok is True, rows[0]
assert rows[1].ts == datetime.datetime(2024, 1, 1, 0, 0, 3), rows[1]

cluster.refresh_schema_metadata()
table = cluster.metadata.keyspaces["py"].tables["t"]
assert [c.name for c in table.partition_key] == ["k"] and [c.name for c in table.clustering_key] == ["c"]
assert table.options["default_time_to_live"] == 3600, table.options
assert "CLUSTERING ORDER BY (c DESC)" in table.export_as_string()

try:
    s.execute("UPDATE py.t SET d = 1 WHERE k = 'a' AND c = 1")
    raise AssertionError("UPDATE should fail")
except InvalidRequest as e:
    assert "not supported" in str(e), e

cluster.shutdown()
print("python check ok")
