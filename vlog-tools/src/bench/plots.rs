//! PLACEHOLDER (replaced by the plots branch).
pub fn write_all(_dir: &std::path::Path, _runs: &[super::figures::EngineRun], _title: &str) -> anyhow::Result<Vec<std::path::PathBuf>> { Ok(vec![]) }
