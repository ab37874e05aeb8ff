use std::io::Write as _;

use clap::value_parser;

use super::*;

const FILE: &str = "/etc/cocoon/test.toml";

/// Environment variables of the child run of [`env_child`]; never set in a normal test run.
const ENV_NAME: &str = "COCOON_CONFIG_FILE_TEST_NAME";
const ENV_PORT: &str = "COCOON_CONFIG_FILE_TEST_PORT";
const ENV_FAST: &str = "COCOON_CONFIG_FILE_TEST_FAST";
const ENV_PEERS: &str = "COCOON_CONFIG_FILE_TEST_PEERS";
const ENV_CONFIG: &str = "COCOON_CONFIG_FILE_TEST_CONFIG";

/// `prog [--chain.api-url] serve [--api.name --api.port --fast --peer...] [positional]`,
/// `prog other [--other.x]`, `prog nested inner [--inner.depth] (required)`.
fn cmd() -> Command {
    Command::new("prog")
        .arg(config_arg(ENV_CONFIG))
        .arg(
            Arg::new("api_url")
                .long("chain.api-url")
                .global(true)
                .default_value("http://default"),
        )
        .subcommand(
            Command::new("serve")
                .arg(
                    Arg::new("name")
                        .long("api.name")
                        .alias("name")
                        .env(ENV_NAME)
                        .default_value("dflt"),
                )
                .arg(
                    Arg::new("port")
                        .long("api.port")
                        .env(ENV_PORT)
                        .value_parser(value_parser!(u16))
                        .default_value("80"),
                )
                .arg(
                    Arg::new("fast")
                        .long("fast")
                        .env(ENV_FAST)
                        .action(ArgAction::SetTrue),
                )
                .arg(
                    Arg::new("peers")
                        .long("peer")
                        .env(ENV_PEERS)
                        .value_delimiter(',')
                        .action(ArgAction::Append),
                )
                .arg(
                    Arg::new("verbose")
                        .short('v')
                        .long("verbose")
                        .action(ArgAction::Count),
                )
                .arg(Arg::new("rest").num_args(0..)),
        )
        .subcommand(Command::new("other").arg(Arg::new("x").long("other.x")))
        .subcommand(
            Command::new("nested").subcommand(
                Command::new("inner").arg(
                    Arg::new("depth")
                        .long("inner.depth")
                        .required(true)
                        .value_parser(value_parser!(u32)),
                ),
            ),
        )
}

fn parse(argv: &[&str], toml: &str) -> Result<ArgMatches, ConfigFileError> {
    try_get_matches_with_toml(
        cmd(),
        std::iter::once("prog").chain(argv.iter().copied()),
        toml,
        Path::new(FILE),
    )
}

fn serve(m: &ArgMatches) -> &ArgMatches {
    m.subcommand_matches("serve").expect("serve ran")
}

fn peers(m: &ArgMatches) -> Vec<String> {
    m.get_many::<String>("peers")
        .map(|v| v.cloned().collect())
        .unwrap_or_default()
}

const FULL: &str = r#"
fast = true
peer = ["a:1", "b:2"]
verbose = 2
[api]
name = "from-file"
port = 8080
[chain]
api-url = "http://file"
"#;

#[test]
fn the_file_fills_what_the_command_line_left_to_defaults() {
    let m = parse(&["serve"], FULL).unwrap();
    let s = serve(&m);
    assert_eq!(s.get_one::<String>("name").unwrap(), "from-file");
    assert_eq!(*s.get_one::<u16>("port").unwrap(), 8080);
    assert!(s.get_flag("fast"));
    assert_eq!(peers(s), ["a:1", "b:2"]);
    assert_eq!(s.get_count("verbose"), 2);
    // A global flag, set at the top of the file, reaches the subcommand.
    assert_eq!(s.get_one::<String>("api_url").unwrap(), "http://file");
}

#[test]
fn without_a_file_key_the_default_stands() {
    let m = parse(&["serve"], "").unwrap();
    let s = serve(&m);
    assert_eq!(s.get_one::<String>("name").unwrap(), "dflt");
    assert_eq!(*s.get_one::<u16>("port").unwrap(), 80);
    assert!(!s.get_flag("fast"));
    assert!(peers(s).is_empty());
    assert_eq!(s.get_one::<String>("api_url").unwrap(), "http://default");
}

#[test]
fn flags_win_over_the_file() {
    let m = parse(
        &[
            "--chain.api-url",
            "http://flag",
            "serve",
            "--api.name",
            "flag",
            "--api.port=9",
            "--fast",
            "--peer",
            "c:3",
            "-v",
        ],
        FULL,
    )
    .unwrap();
    let s = serve(&m);
    assert_eq!(s.get_one::<String>("name").unwrap(), "flag");
    assert_eq!(*s.get_one::<u16>("port").unwrap(), 9);
    assert!(s.get_flag("fast"));
    assert_eq!(peers(s), ["c:3"], "the flag's list replaces the file's");
    assert_eq!(s.get_count("verbose"), 1);
    assert_eq!(s.get_one::<String>("api_url").unwrap(), "http://flag");
    assert_eq!(
        s.value_source("name"),
        Some(ValueSource::CommandLine),
        "a file value reads as given"
    );
}

#[test]
fn a_false_switch_in_the_file_leaves_it_off() {
    let m = parse(&["serve"], "fast = false\n").unwrap();
    assert!(!serve(&m).get_flag("fast"));
}

#[test]
fn the_environment_wins_over_the_file() {
    // The environment of this process is not ours to change: run `env_child` in a child with it.
    let mut config = tempfile::NamedTempFile::new().unwrap();
    config
        .write_all(b"[chain]\napi-url = \"http://env-config\"\n")
        .unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "args::config_file::tests::env_child",
            "--ignored",
            "--nocapture",
        ])
        .env(ENV_NAME, "from-env")
        .env(ENV_PORT, "7")
        .env(ENV_FAST, "true")
        .env(ENV_PEERS, "e:1,e:2")
        .env(ENV_CONFIG, config.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test: {stdout}"
    );
}

#[test]
#[ignore = "run by the_environment_wins_over_the_file with its environment variables set"]
fn env_child() {
    let m = parse(&["serve"], FULL).unwrap();
    let s = serve(&m);
    assert_eq!(s.get_one::<String>("name").unwrap(), "from-env");
    assert_eq!(*s.get_one::<u16>("port").unwrap(), 7);
    assert!(s.get_flag("fast"));
    assert_eq!(peers(s), ["e:1", "e:2"]);
    // And a flag still wins over the environment.
    let m = parse(&["serve", "--api.port", "5"], FULL).unwrap();
    assert_eq!(*serve(&m).get_one::<u16>("port").unwrap(), 5);
    // The environment variable of `--config` names the file.
    let m = try_get_matches_from(cmd(), ["prog", "serve"]).unwrap();
    assert_eq!(
        serve(&m).get_one::<String>("api_url").unwrap(),
        "http://env-config"
    );
}

#[test]
fn an_unknown_key_names_itself_and_the_file() {
    let e = parse(&["serve"], "[api]\nnmae = \"typo\"\n").unwrap_err();
    assert!(
        matches!(&e, ConfigFileError::UnknownKey { key, path } if key == "api.nmae" && path == Path::new(FILE)),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains(FILE) && text.contains("api.nmae"), "{text}");
    // Help, version and the config path itself are no keys.
    for key in ["help = true", "config = \"x.toml\""] {
        assert!(
            matches!(
                parse(&["serve"], key),
                Err(ConfigFileError::UnknownKey { .. })
            ),
            "{key}"
        );
    }
}

#[test]
fn an_alias_is_a_key_but_only_once() {
    let m = parse(&["serve"], "name = \"by-alias\"\n").unwrap();
    assert_eq!(serve(&m).get_one::<String>("name").unwrap(), "by-alias");
    let e = parse(&["serve"], "name = \"a\"\n[api]\nname = \"b\"\n").unwrap_err();
    assert!(
        matches!(&e, ConfigFileError::SetTwice { .. }) && e.to_string().contains(FILE),
        "{e:?}"
    );
}

#[test]
fn a_key_of_another_subcommand_is_skipped() {
    let m = parse(&["serve"], "[other]\nx = \"y\"\n").unwrap();
    assert!(serve(&m).get_one::<String>("name").is_some());
    let m = parse(&["other"], FULL).unwrap();
    let o = m.subcommand_matches("other").unwrap();
    assert_eq!(o.get_one::<String>("api_url").unwrap(), "http://file");
}

#[test]
fn a_bad_value_fails_with_clap_naming_the_flag_and_the_file() {
    let e = parse(&["serve"], "[api]\nport = 99999\n").unwrap_err();
    let ConfigFileError::Value { error, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(error.kind(), ErrorKind::ValueValidation);
    let text = e.to_string();
    assert!(text.contains("--api.port") && text.contains(FILE), "{text}");
    assert!(text.contains("99999"), "{text}");
    assert!(!text.contains("Usage"), "one line: {text}");
}

#[test]
fn a_value_of_the_wrong_shape_is_refused() {
    for toml in [
        "fast = \"yes\"",
        "[api]\nport = [1, 2]",
        "verbose = -1",
        "peer = [[1]]",
    ] {
        let e = parse(&["serve"], toml).unwrap_err();
        assert!(
            matches!(&e, ConfigFileError::WrongType { path, .. } if path == Path::new(FILE)),
            "{toml}: {e:?}"
        );
    }
}

#[test]
fn a_command_line_error_stays_the_command_lines() {
    let e = parse(&["serve", "--api.port", "x"], FULL).unwrap_err();
    assert!(
        matches!(&e, ConfigFileError::CommandLine(c) if c.kind() == ErrorKind::ValueValidation),
        "{e:?}"
    );
    let e = parse(&["--help"], FULL).unwrap_err();
    assert!(
        matches!(&e, ConfigFileError::CommandLine(c) if c.kind() == ErrorKind::DisplayHelp),
        "{e:?}"
    );
}

#[test]
fn a_nested_subcommand_gets_a_required_flag_from_the_file() {
    let e = parse(&["nested", "inner"], "").unwrap_err();
    assert!(
        matches!(&e, ConfigFileError::CommandLine(c) if c.kind() == ErrorKind::MissingRequiredArgument),
        "{e:?}"
    );
    let m = parse(&["nested", "inner"], "[inner]\ndepth = 3\n").unwrap();
    let inner = m
        .subcommand_matches("nested")
        .and_then(|n| n.subcommand_matches("inner"))
        .unwrap();
    assert_eq!(*inner.get_one::<u32>("depth").unwrap(), 3);
    assert_eq!(
        inner.get_one::<String>("api_url").unwrap(),
        "http://default"
    );
}

#[test]
fn values_go_before_a_double_dash() {
    let m = parse(&["serve", "--", "--fast"], "[api]\nname = \"n\"\n").unwrap();
    let s = serve(&m);
    assert_eq!(s.get_one::<String>("name").unwrap(), "n");
    assert!(!s.get_flag("fast"));
    assert_eq!(
        s.get_many::<String>("rest").unwrap().collect::<Vec<_>>(),
        ["--fast"]
    );
}

#[test]
fn config_names_the_file_and_its_errors_name_the_path() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(b"[api]\nport = 8081\n").unwrap();
    let path = f.path().to_str().unwrap().to_owned();
    let m = try_get_matches_from(cmd(), ["prog", "serve", "--config", &path]).unwrap();
    assert_eq!(*serve(&m).get_one::<u16>("port").unwrap(), 8081);
    // `--config` before the subcommand works too (it is global).
    let m = try_get_matches_from(cmd(), ["prog", "--config", &path, "serve"]).unwrap();
    assert_eq!(*serve(&m).get_one::<u16>("port").unwrap(), 8081);
    // Without it there is no file.
    let m = try_get_matches_from(cmd(), ["prog", "serve"]).unwrap();
    assert_eq!(*serve(&m).get_one::<u16>("port").unwrap(), 80);

    let missing = format!("{path}.missing");
    let e = try_get_matches_from(cmd(), ["prog", "serve", "--config", &missing]).unwrap_err();
    assert!(
        matches!(&e, ConfigFileError::Read { .. }) && e.to_string().contains(&missing),
        "{e}"
    );
    f.write_all(b"not toml [\n").unwrap();
    let e = try_get_matches_from(cmd(), ["prog", "serve", "--config", &path]).unwrap_err();
    assert!(
        matches!(&e, ConfigFileError::Toml { .. }) && e.to_string().contains(&path),
        "{e}"
    );
}
