//! `latchkey import clerk --users <export.csv>`: Clerk's user export, streamed in batches
//! (docs/import-export.md). Each batch lands whole in one transaction, so an import that is
//! interrupted is run again: users already present are left alone, the rest arrive.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use latchkey_service::admin::{AdminService, ImportClaims, ImportOutcome};
use latchkey_store::UserRecord;

use crate::clerk_csv::Columns;

/// What one run did (or, in a dry run, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub imported: u64,
    pub already_present: u64,
    /// Rows refused: unreadable, breaking a rule, or naming an identifier someone else holds.
    pub refused: u64,
}

impl Tally {
    fn rows(&self) -> u64 {
        self.imported + self.already_present + self.refused
    }

    pub fn add(&mut self, outcome: &ImportOutcome) {
        match outcome {
            ImportOutcome::Imported => self.imported += 1,
            ImportOutcome::AlreadyPresent => self.already_present += 1,
            ImportOutcome::Conflict(_) => self.refused += 1,
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} imported, {} present, {} refused", self.imported, self.already_present, self.refused)
    }
}

pub struct CsvImport<'a> {
    pub file: &'a Path,
    pub dry_run: bool,
    /// The refused rows with their reasons (default: `<file>.refused.csv`).
    pub report: Option<PathBuf>,
    pub batch: usize,
}

/// A row on its way in, with where it was in the file.
struct Pending {
    line: u64,
    record: UserRecord,
}

/// Imports the file; refused rows go to the report, a tally to standard output.
pub async fn run(admin: &AdminService, options: CsvImport<'_>) -> anyhow::Result<Tally> {
    let operator = crate::operator();
    let file = std::fs::File::open(options.file).with_context(|| format!("cannot open {}", options.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(std::io::BufReader::new(file));
    let columns = Columns::new(reader.headers().context("cannot read the header row")?).map_err(|e| anyhow!(e))?;
    let report_path = options.report.clone().unwrap_or_else(|| {
        let mut name = options.file.as_os_str().to_owned();
        name.push(".refused.csv");
        PathBuf::from(name)
    });
    let mut report = Report::create(&report_path)?;
    let mut progress = Progress::new(size, options.dry_run);
    let mut tally = Tally::default();
    // In a dry run, what earlier batches would have taken (nothing is written to hold it).
    let mut claims = ImportClaims::default();
    let mut batch: Vec<Pending> = Vec::with_capacity(options.batch);
    let mut raw = csv::ByteRecord::new();
    loop {
        let more = reader.read_byte_record(&mut raw).with_context(|| {
            format!("cannot read {} after line {}", options.file.display(), reader.position().line())
        })?;
        if more {
            let line = raw.position().map(|p| p.line()).unwrap_or(0);
            // A row that is not UTF-8 is refused alone; the others go on.
            let prepared = match csv::StringRecord::from_byte_record(raw.clone()) {
                Err(_) => Err(("".to_owned(), "the row is not UTF-8 text".to_owned())),
                Ok(row) => match columns.user(&row) {
                    Ok(user) => {
                        admin.import_record(&operator, user).await.map_err(|e| (columns.id(&row), reason_of(&e)))
                    }
                    Err(reason) => Err((columns.id(&row), reason)),
                },
            };
            match prepared {
                Ok(record) => batch.push(Pending { line, record }),
                Err((id, reason)) => {
                    report.refuse(line, &id, &reason)?;
                    tally.refused += 1;
                }
            }
        }
        if batch.len() >= options.batch.max(1) || (!more && !batch.is_empty()) {
            let pending = std::mem::take(&mut batch);
            let records: Vec<UserRecord> = pending.iter().map(|p| p.record.clone()).collect();
            let outcomes = if options.dry_run {
                admin.judge_import(&operator, &records, &mut claims).await?
            } else {
                admin.import_users(&operator, &records).await?
            };
            for (p, outcome) in pending.iter().zip(outcomes) {
                tally.add(&outcome);
                if let ImportOutcome::Conflict(reason) = outcome {
                    report.refuse(p.line, &p.record.user.id, &reason)?;
                }
            }
            report.flush()?;
            progress.advance(reader.position().byte(), &tally);
        }
        if !more {
            break;
        }
    }
    progress.finish();
    let verb = if options.dry_run { "would import" } else { "imported" };
    println!(
        "{verb} {} users; {} already present; {} refused (reasons in {}); {} rows read",
        tally.imported,
        tally.already_present,
        tally.refused,
        report_path.display(),
        tally.rows()
    );
    Ok(tally)
}

/// A refusal's reason, naming the column it is about.
pub fn reason_of(e: &latchkey_service::ServiceError) -> String {
    match e.param {
        Some(param) if !e.long_message.contains(param) => format!("{param}: {}", e.long_message),
        _ => e.long_message.clone(),
    }
}

/// The refused rows: `line,id,reason`.
struct Report {
    writer: csv::Writer<std::fs::File>,
}

impl Report {
    /// Replaces the report of an earlier run; readable by its owner only (it names people's
    /// addresses), and never through a symbolic link.
    fn create(path: &Path) -> anyhow::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        let file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
        let mut writer = csv::Writer::from_writer(file);
        writer.write_record(["line", "id", "reason"])?;
        Ok(Self { writer })
    }

    fn refuse(&mut self, line: u64, id: &str, reason: &str) -> anyhow::Result<()> {
        self.writer.write_record([line.to_string().as_str(), id, reason])?;
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        Ok(self.writer.flush()?)
    }
}

/// A bar on a terminal; elsewhere (logs, CI) a line per batch on standard output.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    dry_run: bool,
}

impl Progress {
    fn new(bytes: u64, dry_run: bool) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(bytes);
            if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {percent:>3}% {msg}") {
                bar.set_style(style);
            }
            bar
        });
        Self { bar, dry_run }
    }

    fn advance(&mut self, byte: u64, tally: &Tally) {
        let verb = if self.dry_run { "judged" } else { "committed" };
        let message = format!("{verb} {} rows: {tally}", tally.rows());
        match &self.bar {
            Some(bar) => {
                bar.set_position(byte);
                bar.set_message(message);
            }
            None => println!("{message}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
