//! A private CA and a server certificate it signed for `localhost` and 127.0.0.1, made
//! with `openssl` in the scratch directory at test time (no key is ever committed), the
//! shape of a self-hosted upstream behind an internal CA.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::binary::Scratch;

const OPENSSL_HINT: &str = "install openssl (`apt-get install openssl`; .ci/deps/upstreams.sh)";

/// PEM files: the CA's certificate (what `ca_file` names) and the server's chain and key.
pub struct PrivateCa {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// ECDSA P-256 keys, no passphrase.
const EC_KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/// What a server certificate must hold for rustls: the names in `subjectAltName` (the CN
/// is not read), and a leaf (not CA) for serverAuth.
const SERVER_EXTENSIONS: &str = "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
                                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n";

impl PrivateCa {
    pub fn new(scratch: &Scratch) -> PrivateCa {
        let dir = scratch.path().join("pki");
        std::fs::create_dir_all(&dir).unwrap();
        let ca_subject = ["-subj", "/CN=cutover test CA", "-days", "2"];
        let ca_extensions =
            ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"];
        let ca_files = ["-keyout", "ca.key", "-out", "ca.pem"];
        openssl(&dir, &[&["req", "-x509"][..], &EC_KEY, &ca_files, &ca_subject, &ca_extensions].concat());
        let csr = ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"];
        openssl(&dir, &[&["req"][..], &EC_KEY, &csr].concat());
        std::fs::write(dir.join("server.ext"), SERVER_EXTENSIONS).unwrap();
        let sign = ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"];
        openssl(&dir, &[&sign[..], &["-out", "server.pem", "-days", "2", "-extfile", "server.ext"]].concat());
        PrivateCa { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key") }
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| panic!("cannot run openssl ({error}): {OPENSSL_HINT}"));
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}
