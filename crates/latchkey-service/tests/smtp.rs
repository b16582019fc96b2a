//! SMTP delivery against a minimal SMTP server on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use latchkey_service::mail::{SmtpConfig, SmtpMailer};
use latchkey_service::{MailMessage, Mailer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Accepts one session, answers like a permissive relay, and returns everything the client sent.
async fn one_session(listener: TcpListener) -> String {
    let (stream, _) = listener.accept().await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut transcript = String::new();
    write.write_all(b"220 test ESMTP\r\n").await.unwrap();
    let mut in_data = false;
    while let Ok(Some(line)) = lines.next_line().await {
        transcript.push_str(&line);
        transcript.push('\n');
        let reply: &[u8] = if in_data {
            if line == "." {
                in_data = false;
                b"250 queued\r\n"
            } else {
                continue;
            }
        } else {
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                b"250-test\r\n250 OK\r\n"
            } else if upper.starts_with("DATA") {
                in_data = true;
                b"354 go ahead\r\n"
            } else if upper.starts_with("QUIT") {
                write.write_all(b"221 bye\r\n").await.unwrap();
                break;
            } else {
                b"250 OK\r\n"
            }
        };
        write.write_all(reply).await.unwrap();
    }
    transcript
}

/// A relay on this machine without credentials (plain text by default there).
fn plain_relay(port: u16, from: &str) -> SmtpConfig {
    SmtpConfig { host: "127.0.0.1".into(), port: Some(port), from: from.into(), ..SmtpConfig::default() }
}

#[tokio::test]
async fn messages_are_delivered_over_smtp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(one_session(listener));
    let mailer = SmtpMailer::new(&plain_relay(port, "latchkey <no-reply@example.test>"), &Default::default()).unwrap();
    mailer
        .send(MailMessage {
            id: "msg_1".into(),
            to: "ada@example.com".into(),
            subject: "123456 is your latchkey verification code".into(),
            text: "Your code is 123456".into(),
            created_at: 0,
        })
        .await
        .unwrap();
    drop(mailer);
    let transcript = tokio::time::timeout(std::time::Duration::from_secs(10), server).await.unwrap().unwrap();
    assert!(transcript.contains("MAIL FROM:<no-reply@example.test>"), "{transcript}");
    assert!(transcript.contains("RCPT TO:<ada@example.com>"), "{transcript}");
    assert!(transcript.contains("Subject: 123456 is your latchkey verification code"), "{transcript}");
    assert!(transcript.contains("Your code is 123456"), "{transcript}");
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_an_error_not_a_hang() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mailer = SmtpMailer::new(&plain_relay(port, "x@example.test"), &Default::default()).unwrap();
    let message = MailMessage {
        id: "m".into(),
        to: "a@example.com".into(),
        subject: "s".into(),
        text: "t".into(),
        created_at: 0,
    };
    assert!(mailer.send(message).await.is_err());
    assert!(SmtpMailer::new(
        &SmtpConfig { from: "not an address".into(), ..SmtpConfig::default() },
        &Default::default()
    )
    .is_err());
}
