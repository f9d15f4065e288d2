//! The DataStax Python driver (what cqlsh is built on) against the node: the other client a person
//! inspecting the store uses. scripts/setup installs `cassandra-driver`.

use hls_dvr_cqlnode::Node;
use std::process::Command;

#[test]
fn datastax_python_driver() {
    let have =
        Command::new("python3").args(["-c", "import cassandra"]).output().map(|o| o.status.success()).unwrap_or(false);
    assert!(have, "python3 cannot import cassandra: run scripts/setup (pip install cassandra-driver)");
    let node = Node::spawn("127.0.0.1:0").unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python_check.py");
    let out = Command::new("timeout")
        .args(["120", "python3", script, &node.addr().ip().to_string(), &node.addr().port().to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stdout.contains("python check ok"), "stdout:\n{stdout}\nstderr:\n{stderr}");
}
