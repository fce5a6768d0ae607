//! `[log]`: the access log's target, and how it names people.

use std::path::PathBuf;

use gateway_contract::config::{LogTable, Spanned};

use super::{ConfigError, Cx};
use crate::access_log::{AccessLogConfig, AccessLogTarget, HashKey, LogIdentity, MIN_KEY_BYTES};

impl Cx<'_> {
    /// `access = "-"` (standard output) or a file, relative to the config's folder,
    /// whose folder must exist; `identity = "plain" | "hash"`, the latter with exactly
    /// one of `hash_key` and `hash_key_file`. `identity` or a key without `access` is a
    /// mistake (it would silently do nothing).
    pub(super) fn access_log(
        &self,
        log: &LogTable,
    ) -> Result<Option<AccessLogConfig>, ConfigError> {
        let Some(access) = &log.access else {
            let stray = [&log.identity, &log.hash_key, &log.hash_key_file]
                .into_iter()
                .zip(["log.identity", "log.hash_key", "log.hash_key_file"])
                .find_map(|(v, key)| v.as_ref().map(|v| (v, key)));
            return match stray {
                Some((v, key)) => Err(self.err(v, key, "set `access` too: there is no access log")),
                None => Ok(None),
            };
        };
        let value = access.get_ref();
        let target = if value == "-" {
            AccessLogTarget::Stdout
        } else {
            if value.trim().is_empty() {
                return Err(self.err(
                    access,
                    "log.access",
                    "a file path, or \"-\" for standard output",
                ));
            }
            let file = self.beside_config(value);
            let folder = file.parent().filter(|p| !p.as_os_str().is_empty());
            if folder.is_some_and(|f| !f.is_dir()) {
                let message = format!("the folder of {} does not exist", file.display());
                return Err(self.err(access, "log.access", message));
            }
            AccessLogTarget::File(file)
        };
        let identity = self.log_identity(log)?;
        Ok(Some(AccessLogConfig { target, identity }))
    }

    /// A path relative to the config's folder.
    fn beside_config(&self, value: &str) -> PathBuf {
        self.file
            .parent()
            .map_or_else(|| value.into(), |dir| dir.join(value))
    }

    fn log_identity(&self, log: &LogTable) -> Result<LogIdentity, ConfigError> {
        let Some(mode) = &log.identity else {
            return self.no_hash_key(log).map(|()| LogIdentity::Plain);
        };
        match mode.get_ref().as_str() {
            "plain" => self.no_hash_key(log).map(|()| LogIdentity::Plain),
            "hash" => {
                let (secret, at, key) = self.hash_secret(log, mode)?;
                let hash = HashKey::new(&secret).ok_or_else(|| {
                    let message = format!(
                        "the key has {} bytes; a hash key needs at least {MIN_KEY_BYTES} (e.g. `head -c 32 /dev/urandom | base64`)",
                        secret.len()
                    );
                    self.err(at, key, message)
                })?;
                Ok(LogIdentity::Hash(hash))
            }
            _ => Err(self.err(mode, "log.identity", "expected \"plain\" or \"hash\"")),
        }
    }

    /// A hash key set without `identity = "hash"` would silently do nothing.
    fn no_hash_key(&self, log: &LogTable) -> Result<(), ConfigError> {
        let set = [
            (&log.hash_key, "log.hash_key"),
            (&log.hash_key_file, "log.hash_key_file"),
        ]
        .into_iter()
        .find_map(|(v, key)| v.as_ref().map(|v| (v, key)));
        match set {
            Some((v, key)) => {
                Err(self.err(v, key, "a hash key is used only with `identity = \"hash\"`"))
            }
            None => Ok(()),
        }
    }

    /// The secret of `identity = "hash"`: its bytes, and where it was set.
    fn hash_secret<'t>(
        &self,
        log: &'t LogTable,
        mode: &'t Spanned<String>,
    ) -> Result<(Vec<u8>, &'t Spanned<String>, &'static str), ConfigError> {
        match (&log.hash_key, &log.hash_key_file) {
            (Some(k), None) => Ok((k.get_ref().as_bytes().to_vec(), k, "log.hash_key")),
            (None, Some(f)) => {
                let path = self.beside_config(f.get_ref());
                let text = std::fs::read(&path).map_err(|e| {
                    self.err(f, "log.hash_key_file", format!("cannot read {}: {e}", path.display()))
                })?;
                Ok((text.trim_ascii().to_vec(), f, "log.hash_key_file"))
            }
            (Some(_), Some(f)) => Err(self.err(
                f,
                "log.hash_key_file",
                "set `hash_key` or `hash_key_file`, not both",
            )),
            (None, None) => Err(self.err(
                mode,
                "log.identity",
                "\"hash\" needs a secret: `hash_key = \"...\"` or `hash_key_file = \"log.key\"` (at least 16 bytes)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::access_log::{AccessLogTarget, HashKey, LogIdentity};
    use crate::config::Config;

    fn parse(dir: &std::path::Path, log: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(dir.join("gw.toml"), &format!("[log]\n{log}\n"))
    }

    #[test]
    fn identity_plain_or_hash_with_one_secret() {
        let dir = std::env::temp_dir().join(format!("ratelab-log-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = parse(&dir, "access = \"-\"").unwrap();
        let log = c.access_log.unwrap();
        assert_eq!(
            (log.target, log.identity),
            (AccessLogTarget::Stdout, LogIdentity::Plain)
        );
        let c = parse(
            &dir,
            "access = \"a.jsonl\"\nidentity = \"hash\"\nhash_key = \"0123456789abcdef\"",
        )
        .unwrap();
        let key = HashKey::new(b"0123456789abcdef").unwrap();
        let log = c.access_log.unwrap();
        assert_eq!(log.target, AccessLogTarget::File(dir.join("a.jsonl")));
        assert_eq!(log.identity, LogIdentity::Hash(key.clone()));
        // From a file beside the config, surrounding whitespace ignored.
        std::fs::write(dir.join("log.key"), "  0123456789abcdef\n").unwrap();
        let c = parse(
            &dir,
            "access = \"-\"\nidentity = \"hash\"\nhash_key_file = \"log.key\"",
        )
        .unwrap();
        assert_eq!(c.access_log.unwrap().identity, LogIdentity::Hash(key));

        for (text, key, says) in [
            (
                "access = \"-\"\nidentity = \"md5\"",
                "log.identity",
                "\"plain\" or \"hash\"",
            ),
            (
                "access = \"-\"\nidentity = \"hash\"",
                "log.identity",
                "needs a secret",
            ),
            (
                "access = \"-\"\nidentity = \"hash\"\nhash_key = \"short\"",
                "log.hash_key",
                "at least 16",
            ),
            (
                "access = \"-\"\nidentity = \"hash\"\nhash_key = \"0123456789abcdef\"\nhash_key_file = \"log.key\"",
                "log.hash_key_file",
                "not both",
            ),
            (
                "access = \"-\"\nidentity = \"hash\"\nhash_key_file = \"missing.key\"",
                "log.hash_key_file",
                "cannot read",
            ),
            (
                "access = \"-\"\nhash_key = \"0123456789abcdef\"",
                "log.hash_key",
                "only with",
            ),
            ("identity = \"hash\"", "log.identity", "set `access` too"),
        ] {
            let e = parse(&dir, text).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
            assert!(e.message.contains(says), "{text}: {}", e.message);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
