//! TOML configuration files for every Cocoon binary, with one rule: a file key is a flag's long
//! name, and the file only fills what the command line and the environment left unset.
//!
//! ```toml
//! relayer = "http://127.0.0.1:8480"   # --relayer
//! [chain]
//! api-url = "http://127.0.0.1:8081"   # --chain.api-url
//! [wallet]
//! file = "/etc/cocoon/wallet.json"    # --wallet.file
//! ```
//!
//! A flag's long aliases are keys too (`[gateway] listen` for `--listen`, alias
//! `--gateway.listen`). Precedence is flag > environment variable > file > default. The file's values are handed to
//! clap as if typed (`--chain.api-url=...` appended to argv), so clap's own value parsers check
//! them and a bad one fails with clap's message naming the flag, plus the file's path. A key that
//! is no flag anywhere in the program is an error (a typo is never silently ignored); a key that
//! is a flag of another subcommand than the one run is skipped, so one file can serve every
//! subcommand of a binary (`cocoon gateway` and `cocoon wallet show` read the same file).
//!
//! A binary parses its derived `Parser` with [`parse`] (which adds [`config_arg`]), or adds
//! [`config_arg`] to a `Command` and calls [`get_matches`].

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, Parser};

/// Id (and long name) of the `--config <FILE>` argument [`config_arg`] builds.
pub const CONFIG_ID: &str = "config";

/// `--config <FILE>`, global to every subcommand, also read from the environment variable `env`.
pub fn config_arg(env: &'static str) -> Arg {
    Arg::new(CONFIG_ID)
        .long(CONFIG_ID)
        .value_name("FILE")
        .env(env)
        .global(true)
        .value_parser(clap::value_parser!(PathBuf))
        .help(
            "TOML file of flag values: keys are the long flag names (`[chain] api-url = \"...\"` \
             sets --chain.api-url); flags and environment variables win over it",
        )
}

/// Why the command line and its configuration file could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The command line itself is invalid, or asks for `--help` or `--version`: clap's own error,
    /// printed (with usage) and turned into the exit code by [`ConfigFileError::exit`].
    #[error(transparent)]
    CommandLine(#[from] clap::Error),
    /// The configuration file could not be read.
    #[error("config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("config file {}: invalid TOML: {source}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// Where and why.
        source: toml::de::Error,
    },
    /// A key is no flag of the program (keys are the flags' long names: `[chain] api-url`).
    #[error("config file {}: unknown key `{key}`: there is no flag --{key}", path.display())]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key, with its tables joined by dots (`chain.api-url`).
        key: String,
    },
    /// Two keys name the same flag (its long name and an alias: `listen` and `[gateway] listen`).
    #[error("config file {}: keys `{first}` and `{second}` set the same flag", path.display())]
    SetTwice {
        /// The file.
        path: PathBuf,
        /// The first key.
        first: String,
        /// The other key.
        second: String,
    },
    /// A key's TOML value has a shape its flag cannot take (a list for a flag of one value, text
    /// for an on/off flag, a negative count).
    #[error("config file {}: key `{key}` (--{key}) {reason}", path.display())]
    WrongType {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What the flag takes.
        reason: String,
    },
    /// clap refused a value from the file (not a valid address, not one of the choices, a
    /// conflict with a flag given): its message names the flag.
    #[error("config file {}: {message}", path.display())]
    Value {
        /// The file.
        path: PathBuf,
        /// clap's message, without its usage lines.
        message: String,
        /// clap's error, for its kind.
        error: clap::Error,
    },
}

impl ConfigFileError {
    /// Prints the error and ends the process the way clap does: `--help` and `--version` on
    /// stdout with status 0, errors on stderr with status 2.
    pub fn exit(&self) -> ! {
        match self {
            ConfigFileError::CommandLine(e) => e.exit(),
            other => {
                eprintln!("error: {other}");
                std::process::exit(2)
            }
        }
    }
}

/// Parses the process's arguments into `P`, with `--config <FILE>` (or the environment variable
/// `env`) naming the file; prints the error and exits on failure, as clap's `Parser::parse` does.
pub fn parse<P: Parser>(env: &'static str) -> P {
    try_parse_from(env, std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// [`parse`] of `argv` (program name first), returning the error.
pub fn try_parse_from<P, I, T>(env: &'static str, argv: I) -> Result<P, ConfigFileError>
where
    P: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let matches = try_get_matches_from(P::command().arg(config_arg(env)), argv)?;
    Ok(P::from_arg_matches(&matches)?)
}

/// Parses the process's arguments with the file `--config` names; prints the error and exits
/// on failure (as clap's `get_matches` does).
pub fn get_matches(cmd: Command) -> ArgMatches {
    try_get_matches_from(cmd, std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// Parses `argv` (program name first) against `cmd`, filling from the file named by the
/// [`CONFIG_ID`] argument (see [`config_arg`]) whatever neither a flag nor the environment set.
/// Without that argument, or without a value for it, this is clap's plain parse.
pub fn try_get_matches_from<I, T>(cmd: Command, argv: I) -> Result<ArgMatches, ConfigFileError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    // A first, lenient parse finds the subcommand run and the config path even when a required
    // flag is missing (the file may supply it). `--help` and `--version` still end here.
    let first = cmd
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(&argv)?;
    let Some(path) = config_path(&first) else {
        return Ok(cmd.try_get_matches_from(argv)?);
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigFileError::Read {
        path: path.clone(),
        source,
    })?;
    merge(cmd, argv, &first, &text, &path)
}

/// [`try_get_matches_from`] with the file's text given (`path` only names it in errors).
pub fn try_get_matches_with_toml<I, T>(
    cmd: Command,
    argv: I,
    text: &str,
    path: &Path,
) -> Result<ArgMatches, ConfigFileError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let first = cmd
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(&argv)?;
    merge(cmd, argv, &first, text, path)
}

/// The config path in the deepest matches that have one.
fn config_path(matches: &ArgMatches) -> Option<PathBuf> {
    let mut found = None;
    let mut m = Some(matches);
    while let Some(level) = m {
        if let Ok(Some(p)) = level.try_get_one::<PathBuf>(CONFIG_ID) {
            found = Some(p.clone());
        }
        m = level.subcommand().map(|(_, sub)| sub);
    }
    found
}

fn merge(
    cmd: Command,
    argv: Vec<OsString>,
    first: &ArgMatches,
    text: &str,
    path: &Path,
) -> Result<ArgMatches, ConfigFileError> {
    let table: toml::Table = toml::from_str(text).map_err(|source| ConfigFileError::Toml {
        path: path.to_owned(),
        source,
    })?;
    let mut entries = Vec::new();
    flatten("", table, &mut entries);

    // Built, every subcommand lists the global arguments of its ancestors too.
    let mut built = cmd.clone();
    built.build();
    let mut known = BTreeSet::new();
    settable_longs(&built, &mut known);
    let (leaf, leaf_matches) = invoked(&built, first);

    let mut tokens = Vec::new();
    let mut set_by = BTreeMap::new();
    for (key, value) in entries {
        let Some(arg) = leaf
            .get_arguments()
            .find(|a| settable(a) && long_names(a).any(|l| l == key))
        else {
            if known.contains(&key) {
                continue; // a flag of another subcommand
            }
            return Err(ConfigFileError::UnknownKey {
                path: path.to_owned(),
                key,
            });
        };
        if let Some(first) = set_by.insert(arg.get_id().as_str(), key.clone()) {
            return Err(ConfigFileError::SetTwice {
                path: path.to_owned(),
                first,
                second: key,
            });
        }
        if !matches!(
            leaf_matches.value_source(arg.get_id().as_str()),
            None | Some(ValueSource::DefaultValue)
        ) {
            continue; // the command line or the environment set it
        }
        flag_tokens(arg, &key, value, path, &mut tokens)?;
    }
    if tokens.is_empty() {
        return Ok(cmd.try_get_matches_from(argv)?);
    }
    // Before a `--`, after which everything is positional.
    let at = argv
        .iter()
        .skip(1)
        .position(|a| a == "--")
        .map_or(argv.len(), |i| i + 1);
    let mut merged = argv.clone();
    merged.splice(at..at, tokens);
    match cmd.clone().try_get_matches_from(merged) {
        Ok(m) => Ok(m),
        Err(error) => {
            // An error the command line makes alone is the command line's.
            if let Err(own) = cmd.try_get_matches_from(argv)
                && !matches!(
                    own.kind(),
                    ErrorKind::MissingRequiredArgument
                        | ErrorKind::MissingSubcommand
                        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                )
            {
                return Err(own.into());
            }
            Err(ConfigFileError::Value {
                path: path.to_owned(),
                message: clap_message(&error),
                error,
            })
        }
    }
}

/// Leaves of `table` with their dotted keys; tables nest (`[chain] api-url` is `chain.api-url`).
fn flatten(prefix: &str, table: toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            v => out.push((key, v)),
        }
    }
}

/// Whether a file may set this argument: a named flag that is not help, version or the file.
fn settable(arg: &Arg) -> bool {
    arg.get_long().is_some()
        && arg.get_id() != CONFIG_ID
        && !matches!(
            arg.get_action(),
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
        )
}

/// The long name and long aliases of `arg` (`--listen` and `--gateway.listen`).
fn long_names(arg: &Arg) -> impl Iterator<Item = &str> {
    arg.get_long()
        .into_iter()
        .chain(arg.get_all_aliases().unwrap_or_default())
}

fn settable_longs(cmd: &Command, out: &mut BTreeSet<String>) {
    for a in cmd.get_arguments().filter(|a| settable(a)) {
        out.extend(long_names(a).map(str::to_owned));
    }
    for sub in cmd.get_subcommands() {
        settable_longs(sub, out);
    }
}

/// The (built) subcommand the lenient parse ran, with its matches.
fn invoked<'a>(built: &'a Command, first: &'a ArgMatches) -> (&'a Command, &'a ArgMatches) {
    let (mut cmd, mut m) = (built, first);
    while let Some((name, sub_m)) = m.subcommand() {
        match cmd.find_subcommand(name) {
            Some(sub) => (cmd, m) = (sub, sub_m),
            None => break,
        }
    }
    (cmd, m)
}

/// The argv tokens that give `arg` the file's `value`.
fn flag_tokens(
    arg: &Arg,
    key: &str,
    value: toml::Value,
    path: &Path,
    out: &mut Vec<OsString>,
) -> Result<(), ConfigFileError> {
    let wrong = |reason: &str| ConfigFileError::WrongType {
        path: path.to_owned(),
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    let flag = format!("--{key}");
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => {
            let toml::Value::Boolean(on) = value else {
                return Err(wrong("is on/off: give true or false"));
            };
            if on == matches!(arg.get_action(), ArgAction::SetTrue) {
                out.push(flag.into());
            }
        }
        ArgAction::Count => {
            let n = match value {
                toml::Value::Integer(n) if n >= 0 => n,
                _ => return Err(wrong("counts: give a whole number, 0 or more")),
            };
            out.extend((0..n).map(|_| OsString::from(&flag)));
        }
        ArgAction::Set | ArgAction::Append => {
            let many_per_flag = arg.get_num_args().is_some_and(|n| n.max_values() > 1);
            match value {
                toml::Value::Array(items) => {
                    let items = items
                        .into_iter()
                        .map(|v| scalar(v).ok_or_else(|| wrong("lists take plain values")))
                        .collect::<Result<Vec<_>, _>>()?;
                    if items.is_empty() {
                        // Nothing to add: the default stands.
                    } else if many_per_flag {
                        out.push(flag.into());
                        out.extend(items.into_iter().map(OsString::from));
                    } else if matches!(arg.get_action(), ArgAction::Append) {
                        out.extend(items.into_iter().map(|v| format!("{flag}={v}").into()));
                    } else if let Some(d) = arg.get_value_delimiter() {
                        out.push(format!("{flag}={}", items.join(&d.to_string())).into());
                    } else {
                        return Err(wrong("takes one value, not a list"));
                    }
                }
                v => {
                    let v = scalar(v).ok_or_else(|| wrong("takes a plain value"))?;
                    out.push(format!("{flag}={v}").into());
                }
            }
        }
        _ => return Err(wrong("cannot be set from a file")),
    }
    Ok(())
}

/// A TOML value as the text typed on a command line; `None` for tables and lists.
fn scalar(v: toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

/// clap's message on one line, without its `error:` prefix, usage and help hint.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.split("\n\n").next().unwrap_or(&text);
    first
        .trim()
        .trim_start_matches("error:")
        .trim()
        .replace('\n', " ")
}

#[cfg(test)]
mod tests;
