//! openraft's own storage test suite, run on a fresh wisckey store per case.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use wisckey_raft::{LogStore, StateMachineStore, StoreOptions, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, sm) = wisckey_raft::open(dir.path(), StoreOptions::default()).expect("open");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft's storage suite failed: {e}");
    }
}
