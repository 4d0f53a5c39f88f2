//! TLS for registry clients: the platform's verifier (system roots), created on the first
//! handshake and shared by every client, instead of once per client at build time.
//!
//! reqwest builds `rustls_platform_verifier::Verifier` eagerly, which reads every certificate in
//! the system store (about 3.5 ms and a few hundred KiB per client). With one client per account,
//! a Clouddriver config of many accounts paid that many times at start, and a one-shot lookup
//! against a plain-HTTP registry paid it for nothing. Verification itself is unchanged: this only
//! defers and shares the platform verifier.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// A rustls client config with the shared lazy platform verifier; HTTP/2 and HTTP/1.1 by ALPN.
pub(crate) fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let verifier = shared();
    let mut config = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn shared() -> Arc<LazyVerifier> {
    static SHARED: OnceLock<Arc<LazyVerifier>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            Arc::new(LazyVerifier {
                provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
                inner: OnceLock::new(),
            })
        })
        .clone()
}

#[derive(Debug)]
struct LazyVerifier {
    provider: Arc<CryptoProvider>,
    inner: OnceLock<Result<rustls_platform_verifier::Verifier, rustls::Error>>,
}

impl LazyVerifier {
    fn platform(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        self.inner
            .get_or_init(|| rustls_platform_verifier::Verifier::new(self.provider.clone()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.platform()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.platform()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.platform()?.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        // Known from the provider alone, so asking does not load the roots.
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
