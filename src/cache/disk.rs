//! Content that outlives the process, for the one-shot CLI: a script that runs `dimsum history`
//! over hundreds of images starts with empty memory every time, and would otherwise `GET` every
//! manifest and config again (each a pull on Docker Hub).
//!
//! Kept: manifests and config blobs by digest, checked against their digest whenever they are
//! read (a file that does not match is ignored and replaced), and the last digest seen per tag,
//! which only ever serves as a hint: a tag is always revalidated with a `HEAD`, as in memory.
//! Every name is a hash of the registry address, user name, account and repository with the
//! digest or tag, so nothing cached under one identity answers for another, and file names say
//! nothing about what is inside. The directory is private to its user (0700, files 0600); files
//! are written whole (temporary file, then rename); the oldest written go first once the
//! directory passes [`MAX_BYTES`]. A directory that cannot be used means no disk cache, never a
//! failed lookup.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use std::time::Duration;

use jsonrpsee::core::async_trait;

use super::shared::{Lock, Scope, Shared, TagHint};
use crate::registry::{Digest, Fetched};

/// Bound on the directory's size.
pub(crate) const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// About one write in this many checks the directory's size. Checking reads the whole directory,
/// which a one-shot run cannot afford on every write; which writes check follows from their file
/// names (hashes), so it spreads evenly over processes without any shared state.
const CHECK_ONE_IN: u8 = 64;

/// The on-disk cache in one directory.
#[derive(Debug)]
pub(crate) struct Disk {
    dir: PathBuf,
    writes: AtomicU64,
}

impl Disk {
    /// The cache in `dir`, created if missing; `None` (and a debug line) when it cannot be.
    pub(crate) fn open(dir: &Path) -> Option<Disk> {
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => Some(Disk {
                dir: dir.to_owned(),
                writes: AtomicU64::new(0),
            }),
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "disk cache unavailable");
                None
            }
        }
    }

    /// A verified manifest.
    fn read_manifest(&self, scope: &Scope, digest: &Digest) -> Option<Fetched> {
        let mut file = self.read(scope, "manifest", digest.as_str())?;
        let newline = file.iter().position(|b| *b == b'\n')?;
        let bytes = file.split_off(newline + 1);
        let media_type = std::str::from_utf8(&file[..newline]).ok()?;
        let fetched = Fetched::verified(media_type, bytes, digest);
        if fetched.is_none() {
            self.discard(scope, "manifest", digest.as_str());
        }
        fetched
    }

    fn write_manifest(&self, scope: &Scope, fetched: &Fetched) {
        let media_type = fetched.manifest.media_type().as_bytes();
        let parts: [&[u8]; 3] = [media_type, b"\n", &fetched.bytes];
        self.write(scope, "manifest", fetched.digest.as_str(), &parts);
    }

    /// A verified blob.
    fn read_blob(&self, scope: &Scope, digest: &Digest) -> Option<Vec<u8>> {
        let bytes = self.read(scope, "blob", digest.as_str())?;
        if digest.verifies(&bytes) {
            Some(bytes)
        } else {
            self.discard(scope, "blob", digest.as_str());
            None
        }
    }

    fn write_blob(&self, scope: &Scope, digest: &Digest, bytes: &[u8]) {
        self.write(scope, "blob", digest.as_str(), &[bytes]);
    }

    /// The digest `tag` had when last seen: a hint to revalidate, never an answer.
    fn read_tag(&self, scope: &Scope, tag: &str) -> Option<Digest> {
        let bytes = self.read(scope, "tag", tag)?;
        Digest::parse(std::str::from_utf8(&bytes).ok()?)
    }

    fn write_tag(&self, scope: &Scope, tag: &str, digest: &Digest) {
        self.write(scope, "tag", tag, &[digest.as_str().as_bytes()]);
    }

    fn path(&self, scope: &Scope, kind: &str, name: &str) -> PathBuf {
        let mut h = Sha256::new();
        for part in [scope.0.as_str(), kind, name] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        self.dir
            .join(format!("{kind}-{}", hex::encode(h.finalize())))
    }

    /// Whether writing `path` is one of the writes that check the directory's size.
    fn checks_size(path: &Path) -> bool {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let last = name.get(name.len().saturating_sub(2)..).unwrap_or("");
        u8::from_str_radix(last, 16).is_ok_and(|b| b % CHECK_ONE_IN == 0)
    }

    fn read(&self, scope: &Scope, kind: &str, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(scope, kind, name)).ok()
    }

    fn discard(&self, scope: &Scope, kind: &str, name: &str) {
        tracing::warn!(
            kind,
            name,
            "disk cache entry does not match its digest; discarded"
        );
        let _ = std::fs::remove_file(self.path(scope, kind, name));
    }

    fn write(&self, scope: &Scope, kind: &str, name: &str, parts: &[&[u8]]) {
        let path = self.path(scope, kind, name);
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        // Readers see the old file or the whole new one, never half of it; the temporary name is
        // this write's own, even when two tasks or processes keep the same content at once.
        let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| parts.iter().try_for_each(|p| f.write_all(p)))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!(dir = %self.dir.display(), error = %e, "disk cache write failed");
        }
        if Disk::checks_size(&path) {
            self.trim(MAX_BYTES);
        }
    }

    /// Removes the oldest-written files until the directory holds at most 3/4 of `max`, once it
    /// holds more than `max`.
    fn trim(&self, max: u64) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<_> = entries
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                m.is_file()
                    .then_some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        if total <= max {
            return;
        }
        files.sort();
        for (_, len, path) in files {
            if total <= max / 4 * 3 {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

/// Files are small and local: read and written in place (the one-shot CLI runs one lookup).
/// Tags are hints only; there is no fleet to lock against or to tell about events.
#[async_trait]
impl Shared for Disk {
    async fn manifest(&self, scope: &Scope, digest: &Digest) -> Option<Fetched> {
        self.read_manifest(scope, digest)
    }

    async fn put_manifest(&self, scope: &Scope, fetched: &Fetched) {
        self.write_manifest(scope, fetched);
    }

    async fn blob(&self, scope: &Scope, digest: &Digest) -> Option<Vec<u8>> {
        self.read_blob(scope, digest)
    }

    async fn put_blob(&self, scope: &Scope, digest: &Digest, bytes: &[u8]) {
        self.write_blob(scope, digest, bytes);
    }

    async fn tag(&self, scope: &Scope, tag: &str) -> Option<TagHint> {
        self.read_tag(scope, tag).map(TagHint::Seen)
    }

    async fn put_tag(&self, scope: &Scope, tag: &str, digest: &Digest, _: Duration) {
        if self.read_tag(scope, tag).as_ref() != Some(digest) {
            self.write_tag(scope, tag, digest);
        }
    }

    async fn forget_tag(&self, _: &Scope, _: &str) {}

    async fn not_found(&self, _: &Scope, _: &str) -> Option<String> {
        None
    }

    async fn put_not_found(&self, _: &Scope, _: &str, _: &str, _: Duration) {}

    async fn forget_not_found(&self, _: &Scope, _: &str) {}

    async fn lock(&self, _: &Scope, _: &str) -> Lock {
        Lock::None
    }

    async fn unlock(&self, _: &Scope, _: &str, _: &str) {}

    async fn publish(&self, _: &str) {}

    fn hearing(&self) -> Option<bool> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(s: &str) -> Scope {
        Scope(s.to_owned())
    }

    #[test]
    fn blobs_and_tags_round_trip_and_stay_in_their_scope() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(&dir.path().join("a/b")).unwrap();
        let bytes = br#"{"architecture":"amd64"}"#;
        let digest = Digest::sha256(bytes);
        disk.write_blob(&scope("one"), &digest, bytes);
        disk.write_tag(&scope("one"), "v1", &digest);
        assert_eq!(
            disk.read_blob(&scope("one"), &digest).as_deref(),
            Some(&bytes[..])
        );
        assert_eq!(disk.read_tag(&scope("one"), "v1"), Some(digest.clone()));
        assert_eq!(disk.read_blob(&scope("two"), &digest), None);
        assert_eq!(disk.read_tag(&scope("two"), "v1"), None);
        let mode = |p: &Path| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        for f in std::fs::read_dir(dir.path().join("a/b")).unwrap() {
            assert_eq!(mode(&f.unwrap().path()), 0o600);
        }
    }

    #[test]
    fn content_that_does_not_match_its_digest_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path()).unwrap();
        let digest = Digest::sha256(b"{}");
        disk.write_blob(&scope("s"), &digest, b"{ }");
        assert_eq!(disk.read_blob(&scope("s"), &digest), None);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        disk.write_blob(&scope("s"), &digest, b"{}");
        assert!(
            disk.read_manifest(&scope("s"), &digest).is_none(),
            "a blob is not a manifest"
        );
    }

    #[test]
    fn about_one_write_in_64_checks_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path()).unwrap();
        let checks = (0..6400)
            .filter(|i| Disk::checks_size(&disk.path(&scope("s"), "tag", &format!("t{i}"))))
            .count();
        assert!((50..=150).contains(&checks), "{checks} of 6400");
    }

    #[test]
    fn trimming_removes_the_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open(dir.path()).unwrap();
        let digests: Vec<_> = (0..8)
            .map(|i| {
                let bytes = vec![b'a' + i; 1000];
                let digest = Digest::sha256(&bytes);
                disk.write_blob(&scope("s"), &digest, &bytes);
                let path = disk.path(&scope("s"), "blob", digest.as_str());
                let age = std::time::Duration::from_secs(100 - u64::from(i));
                let when = std::time::SystemTime::now() - age;
                std::fs::File::options()
                    .write(true)
                    .open(path)
                    .unwrap()
                    .set_modified(when)
                    .unwrap();
                digest
            })
            .collect();
        disk.trim(8000);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            8,
            "at the bound"
        );
        disk.trim(7999);
        let kept: Vec<bool> = digests
            .iter()
            .map(|d| disk.read_blob(&scope("s"), d).is_some())
            .collect();
        assert_eq!(kept, [false, false, false, true, true, true, true, true]);
    }
}
