//! Debian's podman with runc, in storage of its own: builds the shipped Dockerfile without the
//! network and runs its image as Kubernetes would.
//!
//! Two images cannot be pulled here, so the build replaces them, leaving the Dockerfile as shipped:
//! the `build` stage by a build context holding the binary the tests already built (at the path
//! the stage would have left it), and `BASE_IMAGE` (distroless/cc) by a stand-in assembled from
//! this machine's own files: the binary's shared libraries and loader, the CA bundle, and
//! passwd/group with distroless's `nonroot` (65532). Two sandbox limits are set in a
//! `containers.conf` of our own: `crun` refuses this host's hybrid cgroups (so `runc`), and
//! podman's default rlimits exceed the hard limits here.

use std::path::{Path, PathBuf};
use std::process::Output;

/// A podman with its own storage, configuration and stand-in base image.
pub struct Podman {
    dir: tempfile::TempDir,
}

/// The stand-in for `BASE_IMAGE`.
pub const BASE: &str = "localhost/dimsum-base-standin:test";

impl Podman {
    /// Storage and configuration in a new temporary directory.
    pub fn new() -> Podman {
        super::require("podman", "podman");
        super::require("runc", "runc");
        let dir = tempfile::tempdir().unwrap();
        // Below this machine's hard limits (podman's defaults are above them) and above what
        // dimsum needs (1024 client connections plus registries).
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\n\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        Podman { dir }
    }

    /// Runs `podman <args>` (bounded to two minutes) and returns what it did.
    pub async fn run(&self, args: &[&str]) -> Output {
        let dir = self.dir.path();
        let mut cmd = tokio::process::Command::new("podman");
        cmd.arg("--root")
            .arg(dir.join("storage"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .args(args)
            .env("CONTAINERS_CONF", dir.join("containers.conf"))
            .kill_on_drop(true);
        tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("podman {args:?} hung for 120 s"))
            .unwrap()
    }

    /// `podman <args>`, which must succeed; its stdout, trimmed.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Imports the stand-in base for `binary` as [`BASE`].
    pub async fn import_base(&self, binary: &Path) {
        let root = self.dir.path().join("base");
        let ldd = std::process::Command::new("ldd")
            .arg(binary)
            .output()
            .unwrap();
        let libraries = String::from_utf8(ldd.stdout).unwrap();
        let mut files: Vec<PathBuf> = libraries
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
            .map(PathBuf::from)
            .collect();
        files.push("/etc/ssl/certs/ca-certificates.crt".into());
        for file in files {
            let to = root.join(file.strip_prefix("/").unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&file, &to).unwrap();
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nnonroot:x:65532:\n").unwrap();
        std::fs::create_dir_all(root.join("home/nonroot")).unwrap();
        let tar = self.dir.path().join("base.tar");
        let status = std::process::Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        self.ok(&["import", "-q", tar.to_str().unwrap(), BASE])
            .await;
    }

    /// Builds the repository's Dockerfile as `tag` with `binary` standing for the build stage's
    /// output, reproducibly (fixed timestamp, no identity label, OCI format: podman's Docker
    /// format records the build container's id); returns the image id.
    pub async fn build(&self, repository: &Path, binary: &Path, tag: &str) -> String {
        let context = self.dir.path().join("build-stage");
        let at = context.join("src/target/release");
        std::fs::create_dir_all(&at).unwrap();
        std::fs::copy(binary, at.join("dimsum")).unwrap();
        let build_stage = format!("build={}", context.display());
        let base = format!("BASE_IMAGE={BASE}");
        let out = self
            .ok(&[
                "build",
                "--quiet",
                "--no-cache",
                "--network",
                "none",
                "--pull=never",
                "--format",
                "oci",
                "--timestamp",
                "0",
                "--identity-label=false",
                "--build-context",
                &build_stage,
                "--build-arg",
                &base,
                "-f",
                repository.join("Dockerfile").to_str().unwrap(),
                "-t",
                tag,
                repository.to_str().unwrap(),
            ])
            .await;
        out.lines().last().unwrap_or_default().to_owned()
    }

    /// A directory of ours for what a container mounts.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers of this storage only; their files go with the directory.
        let dir = self.dir.path();
        let _ = std::process::Command::new("podman")
            .arg("--root")
            .arg(dir.join("storage"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .args(["rm", "--all", "--force", "--time", "0"])
            .env("CONTAINERS_CONF", dir.join("containers.conf"))
            .output();
        let _ = std::process::Command::new("podman")
            .arg("--root")
            .arg(dir.join("storage"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .args(["system", "reset", "--force"])
            .env("CONTAINERS_CONF", dir.join("containers.conf"))
            .output();
    }
}
