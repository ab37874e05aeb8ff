//! The `cocoon` command line.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("the cocoon CLI is not built yet")
}
