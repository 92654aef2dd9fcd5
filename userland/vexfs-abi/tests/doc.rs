//! `Documentation/ioctl-abi.rst` states each ioctl's number and the size of
//! its structure, and the values of `CollectionParams::quantize`; this test
//! holds the document to the crate.

use core::mem::size_of;
use vexfs_abi as abi;

/// The ioctls: name, number, structure name, structure size.
fn ioctls() -> [(&'static str, u32, &'static str, usize); 9] {
    [
        (
            "VEXFS_IOC_VERSION",
            abi::VEXFS_IOC_VERSION,
            "VersionInfo",
            size_of::<abi::VersionInfo>(),
        ),
        (
            "VEXFS_IOC_STATS",
            abi::VEXFS_IOC_STATS,
            "Stats",
            size_of::<abi::Stats>(),
        ),
        (
            "VEXFS_IOC_CREATE",
            abi::VEXFS_IOC_CREATE,
            "CollectionParams",
            size_of::<abi::CollectionParams>(),
        ),
        (
            "VEXFS_IOC_INFO",
            abi::VEXFS_IOC_INFO,
            "CollectionInfo",
            size_of::<abi::CollectionInfo>(),
        ),
        (
            "VEXFS_IOC_INSERT",
            abi::VEXFS_IOC_INSERT,
            "InsertRequest",
            size_of::<abi::InsertRequest>(),
        ),
        (
            "VEXFS_IOC_DELETE",
            abi::VEXFS_IOC_DELETE,
            "DeleteRequest",
            size_of::<abi::DeleteRequest>(),
        ),
        (
            "VEXFS_IOC_GET",
            abi::VEXFS_IOC_GET,
            "GetRequest",
            size_of::<abi::GetRequest>(),
        ),
        (
            "VEXFS_IOC_SEARCH",
            abi::VEXFS_IOC_SEARCH,
            "SearchRequest",
            size_of::<abi::SearchRequest>(),
        ),
        (
            "VEXFS_IOC_ATTACH",
            abi::VEXFS_IOC_ATTACH,
            "AttachRequest",
            size_of::<abi::AttachRequest>(),
        ),
    ]
}

/// The table's row for `name`: the lines from `* - ``name``` to the next row.
fn row<'a>(doc: &'a str, name: &str) -> &'a str {
    let head = format!("* - ``{name}``");
    let start = doc
        .find(&head)
        .unwrap_or_else(|| panic!("ioctl-abi.rst has no row for {name}"));
    let rest = &doc[start + head.len()..];
    let end = rest.find("* - ``").unwrap_or(rest.len());
    &rest[..end]
}

/// Documentation/ioctl-abi.rst of the checkout under test. The path comes
/// from cargo at run time, not compile time: the build cache is shared by
/// clones, so a binary built in one clone may run in another.
fn abi_document() -> String {
    let crate_dir =
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    let path = std::path::Path::new(&crate_dir).join("../../Documentation/ioctl-abi.rst");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn the_ioctl_table_matches_the_abi() {
    let doc = abi_document();
    for (name, number, strukt, size) in ioctls() {
        let row = row(&doc, name);
        assert!(
            row.contains(&format!("struct {strukt})`` = ``{number:#010x}``")),
            "{name}: the document's number is not {number:#010x} for struct {strukt}:\n{row}"
        );
        assert!(
            row.contains(&format!(" {size} bytes")),
            "{name}: the document does not give struct {strukt}'s size, {size} bytes:\n{row}"
        );
    }
}

#[test]
fn the_document_names_the_abi_version() {
    let doc = abi_document();
    assert!(
        doc.contains(&format!(
            "``VEXFS_ABI_VERSION`` ({})",
            abi::VEXFS_ABI_VERSION
        )),
        "ioctl-abi.rst does not state ABI version {}",
        abi::VEXFS_ABI_VERSION
    );
}

#[test]
fn the_document_names_the_quantize_values() {
    let doc = abi_document();
    let start = doc
        .find("``CollectionParams``\n")
        .expect("ioctl-abi.rst describes CollectionParams");
    let params = &doc[start..];
    let params = &params[..params.find("``InsertRequest``").unwrap_or(params.len())];
    let params = params.split_whitespace().collect::<Vec<_>>().join(" ");
    for (value, name) in abi::quantize::NAMES.iter().enumerate() {
        let want = format!(
            "``quantize::{}`` = {value} ({name})",
            name.to_ascii_uppercase()
        );
        assert!(
            params.contains(&want),
            "ioctl-abi.rst: CollectionParams does not say {want}:\n{params}"
        );
    }
    assert_eq!(
        (abi::quantize::NONE, abi::quantize::SQ8),
        (0, 1),
        "the document's values"
    );
    assert!(
        params.contains("``u32 quantize`` at offset 20"),
        "ioctl-abi.rst: CollectionParams does not place quantize at offset 20"
    );
    assert_eq!(core::mem::offset_of!(abi::CollectionParams, quantize), 20);
}
