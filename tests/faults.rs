//! Upstream faults a real registry cannot produce, from the in-process fault server.

use std::sync::atomic::Ordering;

use crate::harness::fault::{Fault, FaultServer, MANIFEST_DIGEST};
use crate::harness::run::{account_yaml, config, dimsum};

const LEVEL0_ID: &str = "67bc2694b3cf77027783d4c0f23481bfc18be5ebae5de8833bfda4345563c61f";

async fn run(server: &FaultServer, extra: &str, args: &[&str]) -> crate::harness::run::Output {
    let dir = tempfile::tempdir().unwrap();
    let account = format!("    username: u\n    password: p\n{extra}");
    let cfg = config(dir.path(), &account_yaml("f", &server.url, &account));
    let mut full = vec!["history", "f", "fault/app"];
    full.extend_from_slice(args);
    dimsum(Some(&cfg), &full, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_recover_from_a_short_outage_and_give_up_on_a_long_one() {
    let server = FaultServer::start(Fault::Burst(503, 1)).await;
    let out = run(&server, "", &["v1", "--level", "0"]).await;
    assert!(out.ok().contains(LEVEL0_ID));
    let server = FaultServer::start(Fault::Burst(503, 100)).await;
    run(&server, "", &["v1"])
        .await
        .fails(6, "registry unavailable: HTTP 503");
    // account_yaml sets retries: 1, so two attempts after the auth round trip.
    assert_eq!(server.state.requests.load(Ordering::SeqCst), 3);
    let server = FaultServer::start(Fault::Burst(429, 100)).await;
    run(&server, "", &["v1"]).await.fails(
        6,
        "rate limited by the registry (try later) (retry after 1s)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrustworthy_answers_are_refused() {
    let cases = [
        (Fault::WrongDigestHeader, "does not match the content"),
        (
            Fault::WrongBlob,
            "content does not match digest sha256:b22cf7",
        ),
        (Fault::Garbage, "manifest is not valid JSON"),
    ];
    // Each may be a proxy's or a disk's passing fault: transient, worth a retry.
    for (fault, message) in cases {
        let server = FaultServer::start(fault).await;
        run(&server, "", &["v1"]).await.fails(6, message);
    }
    // No wait makes a manifest smaller: permanent, with the setting to raise.
    let server = FaultServer::start(Fault::Oversize).await;
    run(&server, "", &["v1"]).await.fails(
        7,
        "larger than 4194304 bytes, dimsum's limit (raise dimsum.maxManifestBytes",
    );
    // By digest, the bytes must hash to the digest asked for.
    let server = FaultServer::start(Fault::None).await;
    let other = format!("sha256:{}", "1".repeat(64));
    run(&server, "", &[&other])
        .await
        .fails(6, "content does not match digest");
    let out = run(&server, "", &[MANIFEST_DIGEST, "--level", "0"]).await;
    assert!(out.ok().contains(LEVEL0_ID));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_registry_times_out() {
    let server = FaultServer::start(Fault::Silence).await;
    run(&server, "    clientTimeoutMillis: 300\n", &["v1"])
        .await
        .fails(6, "no answer within 300ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_never_follows_a_redirect_to_another_host() {
    let storage = FaultServer::start(Fault::None).await;
    let server = FaultServer::start(Fault::RedirectBlobs(format!(
        "{}/storage/config",
        storage.url
    )))
    .await;
    let out = run(&server, "", &["v1", "--level", "0"]).await;
    assert!(out.ok().contains(LEVEL0_ID));
    assert!(
        server.authorizations().iter().any(Option::is_some),
        "the registry got credentials"
    );
    let at_storage = storage.authorizations();
    assert_eq!(at_storage.len(), 1, "the blob was fetched from storage");
    assert_eq!(
        at_storage[0], None,
        "no Authorization followed the redirect"
    );
}
