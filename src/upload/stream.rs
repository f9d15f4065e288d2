//! One stream folder: finds its renditions and starts a task for each.
//!
//! A master playlist names the renditions (its variants and alternative renditions with a URI);
//! without one, every `*.m3u8` that parses as a media playlist is a rendition. The rendition name
//! is the media playlist's file stem, sanitized (its path inside the folder when stems collide).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, info_span, warn, Instrument};

use super::changes::Changes;
use super::ingest::Uploads;
use super::rendition::{self, Spec};
use super::source::{self, file_id, normalize, sanitize_name, FileId, Located, Parsed, VariantInfo};

#[derive(Debug, Clone)]
enum Layout {
    Master(Vec<(String, VariantInfo)>),
    Media,
}

struct Known {
    variant: Arc<Mutex<Option<VariantInfo>>>,
}

pub struct Watcher {
    stream: Arc<str>,
    dir: PathBuf,
    poll_interval: Duration,
    changes: Changes,
    /// Playlists named outside the folder, warned about once.
    refused: HashSet<PathBuf>,
    /// Classification of the folder's playlists, by file identity.
    kinds: HashMap<PathBuf, (FileId, Layout)>,
    renditions: HashMap<PathBuf, Known>,
    names: HashSet<String>,
    tasks: JoinSet<()>,
}

pub fn rendition_name(dir: &Path, playlist: &Path, taken: &HashSet<String>) -> String {
    let stem = sanitize_name(&playlist.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    if !taken.contains(&stem) {
        return stem;
    }
    let rel = playlist.strip_prefix(dir).unwrap_or(playlist).with_extension("");
    let rel = sanitize_name(&rel.to_string_lossy());
    if !taken.contains(&rel) {
        return rel;
    }
    (2..).map(|n| sanitize_name(&format!("{stem}_{n}"))).find(|n| !taken.contains(n)).unwrap()
}

impl Watcher {
    pub fn new(stream: &str, dir: &Path, poll_interval: Duration) -> Watcher {
        // Canonical: what the folder's playlists list is checked to stay inside it.
        let dir = std::fs::canonicalize(dir)
            .unwrap_or_else(|_| normalize(&std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())));
        Watcher {
            stream: Arc::from(stream),
            changes: Changes::watch(&dir),
            refused: HashSet::new(),
            dir,
            poll_interval,
            kinds: HashMap::new(),
            renditions: HashMap::new(),
            names: HashSet::new(),
            tasks: JoinSet::new(),
        }
    }

    /// The rendition playlists of the folder now, with their master attributes.
    fn scan(&mut self) -> Vec<(PathBuf, Option<VariantInfo>)> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("m3u8")))
                .collect(),
            Err(e) => {
                debug!("cannot list {}: {e}", self.dir.display());
                return Vec::new();
            }
        };
        files.sort();
        self.kinds.retain(|p, _| files.contains(p));
        for p in &files {
            let Some(id) = file_id(p) else { continue };
            if self.kinds.get(p).is_some_and(|(k, _)| *k == id) {
                continue;
            }
            let Ok(text) = std::fs::read(p) else { continue };
            match source::parse(&text) {
                Ok(Parsed::Master(v)) => {
                    self.kinds.insert(p.clone(), (id, Layout::Master(v)));
                }
                Ok(Parsed::Media(_)) => {
                    self.kinds.insert(p.clone(), (id, Layout::Media));
                }
                Err(e) => debug!("{}: {e}", p.display()),
            }
        }
        let mut masters = false;
        let mut out: Vec<(PathBuf, Option<VariantInfo>)> = Vec::new();
        for p in &files {
            if let Some((_, Layout::Master(vs))) = self.kinds.get(p) {
                masters = true;
                for (uri, info) in vs {
                    let path = match source::locate(&self.dir, p, uri) {
                        Located::Inside(path) | Located::Missing(path) => path,
                        Located::Outside(path) => {
                            if self.refused.insert(path.clone()) {
                                warn!("{} lists {uri}, outside {}: ignored", p.display(), self.dir.display());
                            }
                            continue;
                        }
                        Located::Remote => continue,
                    };
                    if !out.iter().any(|(q, _)| *q == path) {
                        out.push((path, Some(info.clone())));
                    }
                }
            }
        }
        if !masters {
            for p in &files {
                if let Some((_, Layout::Media)) = self.kinds.get(p) {
                    out.push((p.clone(), None));
                }
            }
        }
        out
    }

    fn update(&mut self, shared: &Uploads) {
        for (path, info) in self.scan() {
            if let Some(k) = self.renditions.get(&path) {
                if info.is_some() {
                    *k.variant.lock().unwrap() = info;
                }
                continue;
            }
            let name = rendition_name(&self.dir, &path, &self.names);
            self.names.insert(name.clone());
            let variant = Arc::new(Mutex::new(info));
            let spec = Spec {
                stream: self.stream.clone(),
                name: name.clone(),
                playlist: path.clone(),
                variant: variant.clone(),
                poll_interval: self.poll_interval,
                changes: self.changes.subscribe(),
                dir: self.dir.clone(),
            };
            let span = info_span!("rendition", stream = %self.stream, rendition = %name);
            self.tasks.spawn(rendition::run(spec, shared.clone()).instrument(span));
            self.renditions.insert(path, Known { variant });
        }
    }

    /// Watches the folder until shutdown, then waits for its renditions to finish.
    pub async fn run(mut self, shared: Uploads) {
        info!("watching {}", self.dir.display());
        let mut shutdown = shared.shutdown.clone();
        let mut tick = tokio::time::interval(self.poll_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut changes = self.changes.subscribe();
        while !*shutdown.borrow() {
            tokio::select! {
                _ = tick.tick() => self.update(&shared),
                _ = changes.changed() => self.update(&shared),
                _ = shutdown.changed() => break,
            }
        }
        while self.tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_stems_then_paths() {
        let dir = Path::new("/s");
        let mut taken = HashSet::new();
        let a = rendition_name(dir, Path::new("/s/out_0.m3u8"), &taken);
        assert_eq!(a, "out_0");
        taken.insert(a);
        let b = rendition_name(dir, Path::new("/s/hd/out_0.m3u8"), &taken);
        assert_eq!(b, "hd_out_0");
        taken.insert(b);
        taken.insert("hd_out_0".into());
        assert_eq!(rendition_name(dir, Path::new("/s/hd.x/out_0.m3u8"), &taken), "hd_x_out_0");
        assert_eq!(rendition_name(dir, Path::new("/s/my stream.m3u8"), &HashSet::new()), "my_stream");
    }

    #[test]
    fn paths_normalize() {
        assert_eq!(normalize(Path::new("/s/./a/../b.m3u8")), PathBuf::from("/s/b.m3u8"));
        assert_eq!(normalize(Path::new("../a")), PathBuf::from("../a"));
    }
}
