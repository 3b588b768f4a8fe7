//! DKIM: digests are signed over the contract's headers, and an independent verifier
//! (Python's dkimpy, given our public key as the DNS record) accepts them.

use std::path::Path;
use std::process::Command;

use crate::helpers::spawn_app_for_sends;
use crate::upstream::Upstream;

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("command runs");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// dkimpy, installed from PyPI on first use if the machine lacks it.
fn ensure_dkimpy() {
    let have =
        Command::new("python3").args(["-c", "import dkim"]).status().is_ok_and(|s| s.success());
    if !have {
        run(Command::new("python3").args(["-m", "pip", "install", "--quiet", "dkimpy"]));
    }
}

const VERIFY: &str = r#"
import sys, dkim
message = open(sys.argv[1], 'rb').read()
record = open(sys.argv[2], 'rb').read()
def dns(name, timeout=5):
    assert name == b'pb2026._domainkey.paperboy.test.', name
    return record
print('pass' if dkim.verify(message, dnsfunc=dns) else 'fail')
"#;

fn verify(dir: &Path, raw: &[u8], record: &str) -> String {
    std::fs::write(dir.join("message.eml"), raw).unwrap();
    std::fs::write(dir.join("record.txt"), record).unwrap();
    std::fs::write(dir.join("verify.py"), VERIFY).unwrap();
    let out = run(Command::new("python3")
        .arg(dir.join("verify.py"))
        .arg(dir.join("message.eml"))
        .arg(dir.join("record.txt")));
    String::from_utf8(out).unwrap().trim().to_string()
}

async fn signed_digest_verifies(pkcs8: bool) {
    ensure_dkimpy();
    let dir = std::env::temp_dir().join(format!("paperboy-dkim-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("dkim.pem");
    run(Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&key));
    if !pkcs8 {
        run(Command::new("openssl")
            .args(["rsa", "-traditional", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&key));
        assert!(
            std::fs::read_to_string(&key).unwrap().starts_with("-----BEGIN RSA PRIVATE KEY-----")
        );
    }
    let public =
        run(Command::new("openssl").args(["pkey", "-pubout", "-outform", "DER", "-in"]).arg(&key));
    use base64::Engine;
    let record =
        format!("v=DKIM1; k=rsa; p={}", base64::engine::general_purpose::STANDARD.encode(public));

    let up = Upstream::start().await;
    let key_path = key.to_string_lossy().into_owned();
    let app = spawn_app_for_sends(&[
        ("PAPERBOY_DKIM_DOMAIN", "paperboy.test"),
        ("PAPERBOY_DKIM_SELECTOR", "pb2026"),
        ("PAPERBOY_DKIM_KEY_FILE", key_path.as_str()),
    ])
    .await;
    app.seed_papers(&up).await;
    app.subscriber("signed@example.com", &[("topics", "diffusion")]).await;
    app.send_edition("2025-11-06").await;
    let mails = app.smtp.wait_for(2).await;
    let digest = &app.digests_to("signed@example.com")[0];
    let confirmation = mails.iter().find(|m| m.header("x-paperboy-edition").is_none()).unwrap();

    let signature = digest.header("dkim-signature").expect("a DKIM-Signature header");
    let signed: String =
        signature.split(';').find_map(|t| t.trim().strip_prefix("h=")).unwrap().replace(' ', "");
    for h in
        ["from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"]
    {
        assert!(signed.split(':').any(|s| s == h), "{h} is not signed: {signed}");
    }
    assert!(signature.contains("d=paperboy.test"));
    assert_eq!(verify(&dir, &digest.raw, &record), "pass");
    assert_eq!(
        verify(&dir, &confirmation.raw, &record),
        "pass",
        "transactional mail is signed too"
    );

    // Tampering with a signed header breaks the signature.
    let tampered = String::from_utf8_lossy(&digest.raw).replacen(
        "List-Unsubscribe: <",
        "List-Unsubscribe: <https://evil.example/",
        1,
    );
    assert_eq!(verify(&dir, tampered.as_bytes(), &record), "fail");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_signed_with_a_pkcs8_key_verify() {
    signed_digest_verifies(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_signed_with_a_pkcs1_key_verify() {
    signed_digest_verifies(false).await;
}
