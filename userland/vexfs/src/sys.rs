//! The raw ioctls, declared once from the ABI's numbers and structures.
//!
//! Each function here is `unsafe`: the request structures carry user
//! addresses the kernel reads or writes, which only the caller can vouch
//! for. Each is called from exactly one safe method of this crate, which
//! builds its request from borrowed buffers and states why in a `SAFETY`
//! comment.

use vexfs_abi as abi;

nix::ioctl_read!(
    version,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_VERSION,
    abi::VersionInfo
);
nix::ioctl_read!(
    stats,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_STATS,
    abi::Stats
);
nix::ioctl_write_ptr!(
    create,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_CREATE,
    abi::CollectionParams
);
nix::ioctl_read!(
    info,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_INFO,
    abi::CollectionInfo
);
nix::ioctl_write_ptr!(
    insert,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_INSERT,
    abi::InsertRequest
);
nix::ioctl_write_ptr!(
    delete,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_DELETE,
    abi::DeleteRequest
);
nix::ioctl_readwrite!(
    get,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_GET,
    abi::GetRequest
);
nix::ioctl_write_ptr!(
    search,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_SEARCH,
    abi::SearchRequest
);
nix::ioctl_write_ptr!(
    attach,
    abi::VEXFS_IOC_MAGIC,
    abi::VEXFS_IOC_NR_ATTACH,
    abi::AttachRequest
);

#[cfg(test)]
mod tests {
    use std::mem::size_of;
    use vexfs_abi as abi;

    #[test]
    fn nix_and_abi_agree_on_ioctl_numbers() {
        let version = nix::request_code_read!(
            abi::VEXFS_IOC_MAGIC,
            abi::VEXFS_IOC_NR_VERSION,
            size_of::<abi::VersionInfo>()
        );
        let stats = nix::request_code_read!(
            abi::VEXFS_IOC_MAGIC,
            abi::VEXFS_IOC_NR_STATS,
            size_of::<abi::Stats>()
        );
        assert_eq!(version as u32, abi::VEXFS_IOC_VERSION);
        assert_eq!(stats as u32, abi::VEXFS_IOC_STATS);
    }

    #[test]
    fn nix_and_abi_agree_on_vector_ioctl_numbers() {
        use nix::{request_code_read as r, request_code_write as w};
        let m = abi::VEXFS_IOC_MAGIC;
        let cases = [
            (
                w!(
                    m,
                    abi::VEXFS_IOC_NR_CREATE,
                    size_of::<abi::CollectionParams>()
                ),
                abi::VEXFS_IOC_CREATE,
            ),
            (
                r!(m, abi::VEXFS_IOC_NR_INFO, size_of::<abi::CollectionInfo>()),
                abi::VEXFS_IOC_INFO,
            ),
            (
                w!(m, abi::VEXFS_IOC_NR_INSERT, size_of::<abi::InsertRequest>()),
                abi::VEXFS_IOC_INSERT,
            ),
            (
                w!(m, abi::VEXFS_IOC_NR_DELETE, size_of::<abi::DeleteRequest>()),
                abi::VEXFS_IOC_DELETE,
            ),
            (
                nix::request_code_readwrite!(
                    m,
                    abi::VEXFS_IOC_NR_GET,
                    size_of::<abi::GetRequest>()
                ),
                abi::VEXFS_IOC_GET,
            ),
            (
                w!(m, abi::VEXFS_IOC_NR_SEARCH, size_of::<abi::SearchRequest>()),
                abi::VEXFS_IOC_SEARCH,
            ),
            (
                w!(m, abi::VEXFS_IOC_NR_ATTACH, size_of::<abi::AttachRequest>()),
                abi::VEXFS_IOC_ATTACH,
            ),
        ];
        for (i, (nix_code, abi_code)) in cases.into_iter().enumerate() {
            assert_eq!(nix_code as u32, abi_code, "case {i}");
        }
    }
}
