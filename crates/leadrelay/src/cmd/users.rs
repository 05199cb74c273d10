//! `leadrelay users add` and `leadrelay users list`: the people of a publisher's team, from the
//! machine that holds the database. This is how the first person of a publisher is made (then
//! they add the others, by password or invitation, through the API).
//!
//! The password is read from standard input with `--password-stdin` (one line), or asked twice
//! at a terminal with echo off; it is never an argument, where `ps` and shell history would
//! show it.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{anyhow, bail};
use leadrelay_core::PublisherId;
use leadrelay_core::audit::Actor;
use leadrelay_core::sales::Role;
use leadrelay_server::config::Config;
use leadrelay_server::ops::{NewUser, OpsError, Password};

/// What `users add` was given.
pub struct AddArgs {
    /// `--publisher`
    pub publisher: String,
    /// `--new-publisher`: create the publisher first, with this name.
    pub new_publisher: Option<String>,
    /// `--email`
    pub email: String,
    /// `--name`
    pub name: String,
    /// `--role`
    pub role: String,
    /// `--password-stdin`
    pub password_stdin: bool,
}

/// An error of the use case, for a person at a terminal (fields as the flags that set them).
fn describe(e: OpsError, publisher: &PublisherId) -> anyhow::Error {
    match e {
        OpsError::Invalid(fields) => {
            let lines: Vec<String> = fields
                .iter()
                .map(|f| match f.path.as_str() {
                    "password" => format!("the password {}", f.message),
                    flag => format!("--{flag} {}", f.message),
                })
                .collect();
            anyhow!("{}", lines.join("; "))
        }
        OpsError::NotFound("publisher") => {
            anyhow!(
                "publisher '{publisher}' does not exist; add --new-publisher \"Its name\" to create it with its first person"
            )
        }
        OpsError::Conflict(why) => anyhow!("{why} (an address belongs to one user, whatever the publisher)"),
        other => anyhow!("{other}"),
    }
}

/// Reads one line of standard input as the password (the line ending is not part of it).
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    Ok(password.strip_suffix('\r').unwrap_or(password).to_owned())
}

/// Asks for the password twice at the terminal, with echo off.
#[cfg(unix)]
fn password_from_terminal() -> anyhow::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).map_err(|e| anyhow!("reading the terminal's settings: {e}"))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    let ask = |prompt: &str| -> anyhow::Result<String> {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        tcsetattr(&stdin, OptionalActions::Now, &quiet).map_err(|e| anyhow!("turning the echo off: {e}"))?;
        let read = password_from_stdin();
        // The echo comes back whatever happened to the read.
        let restored = tcsetattr(&stdin, OptionalActions::Now, &saved);
        eprintln!();
        restored.map_err(|e| anyhow!("restoring the terminal's settings: {e}"))?;
        read
    };
    let first = ask("password: ")?;
    let again = ask("the same password again: ")?;
    if first != again {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

#[cfg(not(unix))]
fn password_from_terminal() -> anyhow::Result<String> {
    bail!("asking for a password needs a Unix terminal here; use --password-stdin")
}

/// `leadrelay users add`: adds a person with a password to a publisher's team.
///
/// # Errors
/// A missing publisher, a taken address, a password that breaks the rule, no password given.
pub async fn add(config: &Config, args: AddArgs) -> anyhow::Result<()> {
    let publisher = PublisherId::parse(&args.publisher).map_err(|rule| anyhow!("--publisher {rule}"))?;
    let role = Role::parse(&args.role).ok_or_else(|| anyhow!("--role must be one of: admin, member, viewer"))?;
    let from_stdin = args.password_stdin;
    if !from_stdin && !std::io::stdin().is_terminal() {
        bail!(
            "no password given: write it on standard input with --password-stdin, or run this at a terminal to be asked"
        );
    }
    let plain =
        tokio::task::spawn_blocking(move || if from_stdin { password_from_stdin() } else { password_from_terminal() })
            .await
            .map_err(|e| anyhow!("reading the password: {e}"))??;
    let password = Password::new(plain).map_err(|rule| anyhow!("the password {rule}"))?;
    let ops = super::open_ops(config).await?;
    if let Some(name) = args.new_publisher {
        ops.create_publisher(publisher.clone(), name).await.map_err(|e| match e {
            OpsError::Conflict(why) => anyhow!("{why}; leave out --new-publisher to add a person to it"),
            OpsError::Invalid(_) => anyhow!("--new-publisher must be 1-200 characters"),
            other => anyhow!("{other}"),
        })?;
        println!("created publisher {publisher}");
    }
    let new = NewUser { email: args.email, name: args.name, role, password: Some(password) };
    let added = ops.add_user(&Actor::admin(), &publisher, new).await.map_err(|e| describe(e, &publisher))?;
    let u = &added.user;
    println!(
        "added {} ({}) to {} as {}; they can sign in now at {}/ui/",
        u.email,
        u.id,
        u.publisher,
        u.role,
        config.public_url()
    );
    Ok(())
}

/// `leadrelay users list`: a publisher's team, oldest first.
///
/// # Errors
/// A missing publisher.
pub async fn list(config: &Config, publisher: &str) -> anyhow::Result<()> {
    let publisher = PublisherId::parse(publisher).map_err(|rule| anyhow!("--publisher {rule}"))?;
    let ops = super::open_ops(config).await?;
    let users = ops.list_users(&publisher).await.map_err(|e| describe(e, &publisher))?;
    println!("{:<38} {:<7} {:<9} {:<32} NAME", "ID", "ROLE", "STATUS", "EMAIL");
    for u in &users {
        let status = if u.password_hash.is_some() { "active" } else { "invited" };
        println!("{:<38} {:<7} {:<9} {:<32} {}", u.id, u.role, status, u.email, u.name);
    }
    Ok(())
}
