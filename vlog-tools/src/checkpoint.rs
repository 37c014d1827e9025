//! `vlog-tools checkpoint`: a consistent copy of a database in another
//! directory (`Db::checkpoint_with`), with a progress bar.

use anyhow::{Context, Result};
use std::path::PathBuf;
use wisckey::{CheckpointInfo, CheckpointOptions, CheckpointProgress, Db, Options};

#[derive(Debug, clap::Args)]
pub struct CheckpointArgs {
    /// The database directory (must already hold a database). It is opened
    /// read-only: nothing in it changes, and it must not be open for
    /// writing elsewhere (a process that has it open should call
    /// `Db::checkpoint` itself).
    #[arg(long)]
    db: PathBuf,
    /// The checkpoint's directory: must not exist, or be empty.
    #[arg(long)]
    out: PathBuf,
    /// Only these tables, comma-separated (the default table is always
    /// kept); the others are dropped in the copy.
    #[arg(long, value_delimiter = ',')]
    tables: Option<Vec<String>>,
    /// Copy every file instead of hard-linking the immutable ones (a copy
    /// that shares no inode with the source).
    #[arg(long)]
    copy: bool,
    /// Print what the checkpoint made as JSON.
    #[arg(long)]
    json: bool,
}

fn progress_bar() -> (
    indicatif::ProgressBar,
    impl Fn(&CheckpointProgress) + Send + Sync,
) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "[checkpoint] {bar:40} {pos}/{len} files {msg} {elapsed}",
        )
        .expect("a valid template"),
    );
    let b = bar.clone();
    let update = move |p: &CheckpointProgress| {
        b.set_length(p.files_total);
        b.set_position(p.files_done);
        b.set_message(format!(
            "{} of {}",
            crate::units::bytes(p.bytes_done),
            crate::units::bytes(p.bytes_total)
        ));
    };
    (bar, update)
}

pub fn checkpoint(args: &CheckpointArgs) -> Result<()> {
    let db = Db::open_read_only(&args.db, Options::default())
        .with_context(|| format!("opening {} read-only", args.db.display()))?;
    let mut opts = CheckpointOptions::default().hard_links(!args.copy);
    if let Some(t) = &args.tables {
        opts = opts.tables(t.iter().cloned());
    }
    let (bar, update) = progress_bar();
    let info = db.checkpoint_with(&args.out, opts.on_progress(update));
    bar.finish_and_clear();
    let info = info.with_context(|| format!("checkpoint into {}", args.out.display()))?;
    db.close().context("closing the database")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print(&args.out, &info);
    }
    Ok(())
}

fn print(out: &std::path::Path, i: &CheckpointInfo) {
    use crate::units::bytes;
    println!("checkpoint             {}", out.display());
    println!("last sequence          {}", i.last_sequence);
    println!(
        "tables                 default{}{}",
        if i.tables.is_empty() { "" } else { ", " },
        i.tables.join(", ")
    );
    println!(
        "linked                 {} files, {}",
        i.files_linked,
        bytes(i.bytes_linked)
    );
    println!(
        "copied                 {} files, {}",
        i.files_copied,
        bytes(i.bytes_copied)
    );
    println!("time                   {:.3} s", i.seconds);
}
