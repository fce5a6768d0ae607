//! `ratelab man`: man pages generated from the command line's own definition
//! (clap_mangen): `ratelab.1` on stdout, or one page per command into a directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

/// Options of `ratelab man`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write ratelab.1 and one ratelab-COMMAND.1 per command into DIR instead of
    /// printing ratelab.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints or writes the man pages.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let command = crate::cli::command();
    match &args.dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .context("rendering the man page")?;
            use std::io::Write as _;
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = std::io::stdout().lock().write_all(&out);
        }
        Some(dir) => {
            let written = write_pages(command, dir)?;
            for path in written {
                println!("{}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `ratelab.1` and a page per subcommand into `dir`.
fn write_pages(command: clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let mut write = |name: String, page: clap_mangen::Man| -> anyhow::Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        page.render(&mut out)
            .with_context(|| format!("rendering {name}.1"))?;
        std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    let command = command.version(env!("CARGO_PKG_VERSION"));
    for sub in command.get_subcommands() {
        let name = format!("ratelab-{}", sub.get_name());
        let sub = sub
            .clone()
            .name(name.clone())
            .version(env!("CARGO_PKG_VERSION"));
        write(name, clap_mangen::Man::new(sub))?;
    }
    write("ratelab".to_owned(), clap_mangen::Man::new(command))?;
    Ok(written)
}
