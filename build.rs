//! Build script of the nginx module (src/nginx). Checks, before a long compile, that the nginx tree the module is built against exists and
//! matches the nginx installed here; nginx refuses a module built for another version.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=NGINX_BUILD_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    let Some(dir) = std::env::var_os("NGINX_BUILD_DIR").map(PathBuf::from) else {
        panic!("NGINX_BUILD_DIR is not set: run scripts/setup");
    };
    let dir =
        if dir.is_relative() { PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join(dir) } else { dir };
    if !dir.join("ngx_auto_config.h").is_file() {
        panic!(
            "{} is not a configured nginx tree: run scripts/setup, which configures Debian's nginx \
             sources with Debian's flags",
            dir.display()
        );
    }
    println!("cargo:rerun-if-changed={}", dir.join("ngx_auto_config.h").display());
    let header = dir.join("../src/core/nginx.h");
    let tree_version = std::fs::read_to_string(&header).ok().and_then(|h| {
        h.lines()
            .find(|l| l.starts_with("#define NGINX_VERSION "))
            .and_then(|l| l.split('"').nth(1).map(str::to_string))
    });
    // `nginx -v` prints to stderr: "nginx version: nginx/1.22.1".
    let installed = Command::new("nginx").arg("-v").output().ok().and_then(|o| {
        let s = String::from_utf8_lossy(&o.stderr).to_string();
        s.split("nginx/").nth(1).map(|v| v.split_whitespace().next().unwrap_or("").to_string())
    });
    if let (Some(tree), Some(installed)) = (tree_version, installed) {
        if tree != installed {
            panic!(
                "the nginx tree in {} is nginx {tree} but the installed nginx is {installed}: \
                 run scripts/setup to configure matching sources",
                dir.display()
            );
        }
    }
}
