//! `[log]`: the access log's target.

use gateway_contract::config::LogTable;

use super::{ConfigError, Cx};
use crate::access_log::AccessLogTarget;

impl Cx<'_> {
    /// `access = "-"` (standard output) or a file, relative to the config's folder,
    /// whose folder must exist.
    pub(super) fn access_log(
        &self,
        log: &LogTable,
    ) -> Result<Option<AccessLogTarget>, ConfigError> {
        let Some(access) = &log.access else {
            return Ok(None);
        };
        let value = access.get_ref();
        if value == "-" {
            return Ok(Some(AccessLogTarget::Stdout));
        }
        if value.trim().is_empty() {
            return Err(self.err(
                access,
                "log.access",
                "a file path, or \"-\" for standard output",
            ));
        }
        let file = self
            .file
            .parent()
            .map_or_else(|| value.into(), |dir| dir.join(value));
        let folder = file.parent().filter(|p| !p.as_os_str().is_empty());
        if folder.is_some_and(|f| !f.is_dir()) {
            let message = format!("the folder of {} does not exist", file.display());
            return Err(self.err(access, "log.access", message));
        }
        Ok(Some(AccessLogTarget::File(file)))
    }
}
