//! `latchkey import clerk` of a generated Clerk export: users per second and the process's
//! peak memory, for 10,000 and 100,000 users (the same peak for both is what streaming
//! means), on SQLite and, when a PostgreSQL URL is given, on a fresh PostgreSQL database.
//! Every row carries a bcrypt digest (stored, not verified, at import), a username and an
//! address; one in ten a phone number, one in twenty an authenticator key.
//!
//! Usage: `cargo build --release -p latchkey -p latchkey-bench &&
//!   target/release/import target/release/latchkey [postgres://postgres@127.0.0.1:5432/test]`
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

const BCRYPT: &str = "$2b$10$U4C0ZY8OG8y41F9LusfKyu3HRMBL0rCZcKBVsXhgr.n8Ou6FPhzO2";
const HEADER: &str = "id,first_name,last_name,username,primary_email_address,primary_phone_number,\
verified_email_addresses,unverified_email_addresses,verified_phone_numbers,unverified_phone_numbers,\
totp_secret,password_digest,password_hasher";

fn write_export(path: &Path, rows: usize) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "{HEADER}")?;
    for i in 0..rows {
        let phone = if i % 10 == 0 { format!("+1555{:07}", i % 10_000_000) } else { String::new() };
        let totp = if i % 20 == 0 { "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" } else { "" };
        writeln!(
            out,
            "user_b{i:09},First{i},Last{i},user{i:09},u{i}@example.com,{phone},u{i}@example.com,,{phone},,{totp},{BCRYPT},bcrypt"
        )?;
    }
    Ok(out.flush()?)
}

/// The peak resident memory of a process so far, in KiB (`VmHWM`).
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs one import; returns (seconds, peak KiB, the summary line).
fn import(bin: &Path, dir: &Path, database_url: &str, file: &str) -> anyhow::Result<(f64, u64, String)> {
    let migrate = Command::new(bin)
        .current_dir(dir)
        .env("LATCHKEY_DATABASE_URL", database_url)
        .arg("migrate")
        .stdout(Stdio::null())
        .status()?;
    if !migrate.success() {
        bail!("migrate failed");
    }
    let started = Instant::now();
    let mut child = Command::new(bin)
        .current_dir(dir)
        .env("LATCHKEY_DATABASE_URL", database_url)
        .args(["import", "clerk", "--users", file])
        .stdout(Stdio::piped())
        .spawn()
        .context("latchkey import")?;
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().context("stdout")?, &mut out)?;
    if !status.success() {
        bail!("the import failed: {out}");
    }
    let summary = out.lines().find(|l| l.starts_with("imported ")).unwrap_or("").to_owned();
    Ok((seconds, peak, summary))
}

fn fresh_postgres(admin_url: &str, name: &str) -> anyhow::Result<String> {
    for sql in [format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), format!("CREATE DATABASE {name}")] {
        let ok = Command::new("psql").arg(admin_url).args(["-q", "-c", &sql]).stdout(Stdio::null()).status()?;
        if !ok.success() {
            bail!("psql: {sql}");
        }
    }
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let bin = Path::new(args.get(1).map(String::as_str).unwrap_or("target/release/latchkey")).canonicalize()?;
    let postgres = args.get(2);
    println!("latchkey import clerk with {}", bin.display());
    let work = tempfile::tempdir()?;
    for rows in [10_000, 100_000] {
        let file = work.path().join(format!("export-{rows}.csv"));
        write_export(&file, rows)?;
        let file = file.to_string_lossy().into_owned();
        let mut backends = vec![("SQLite", None)];
        if let Some(admin) = postgres {
            backends.push(("PostgreSQL", Some(admin)));
        }
        for (name, admin) in backends {
            let dir = tempfile::tempdir()?;
            let url = match admin {
                Some(admin) => fresh_postgres(admin, "latchkey_bench_import")?,
                None => format!("sqlite://{}", dir.path().join("latchkey.db").display()),
            };
            let (seconds, peak, summary) = import(&bin, dir.path(), &url, &file)?;
            println!(
                "{name:<10} {rows:>7} users: {seconds:>6.2} s, {:>7.0} users/s, peak memory {:.1} MiB ({summary})",
                rows as f64 / seconds,
                peak as f64 / 1024.0
            );
            if let Some(admin) = admin {
                let _ = fresh_postgres(admin, "latchkey_bench_import");
            }
        }
    }
    Ok(())
}
