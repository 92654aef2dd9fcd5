//! The client library of VexFS: the one way userland talks to the kernel
//! module's ioctls.
//!
//! Three handles cover them, each opened by path:
//!
//! * [`Mount`]: any file or directory of a VexFS mount; the module's
//!   version ([`Mount::version`]) and the counters ([`Mount::stats`]).
//! * [`Collection`]: a collection directory; [`Collection::create`],
//!   [`info`](Collection::info), batch [`insert`](Collection::insert) (an
//!   upsert), [`delete`](Collection::delete), [`get`](Collection::get) and
//!   [`search`](Collection::search) (exact, or HNSW with a beam width; one
//!   query or many in one call).
//! * [`CollectionFile`]: a regular file in a collection, whose vector
//!   [`attach`](CollectionFile::attach) sets.
//!
//! Batches are borrowed slices (`&[u64]` ids, `&[f32]` vectors row-major);
//! their addresses go into the request structures as they are, so the
//! kernel reads the caller's memory and nothing is copied on the way in.
//! Every failure is an [`Error`] carrying the operation and the errno,
//! whose `Display` is one line a user can act on: the messages `vexctl`
//! prints.
//!
//! The request structures and limits are the ABI's, re-exported as
//! [`abi`]; [`Errno`] is `nix`'s, re-exported.
//!
//! # Examples
//!
//! Build a collection, fill it, search it (needs a VexFS mount):
//!
//! ```no_run
//! use vexfs::{Collection, CollectionParams, HnswParams, Index, Metric, SearchMode};
//!
//! let params = CollectionParams::new(4, Metric::Cosine)
//!     .with_index(Index::Hnsw(HnswParams::default()));
//! let coll = Collection::create("/mnt/vex/notes", &params)?;
//! let ids = [10, 11, 12];
//! let vectors = [
//!     1.0, 0.0, 0.0, 0.0, //
//!     0.0, 1.0, 0.0, 0.0, //
//!     0.0, 0.0, 1.0, 0.0,
//! ];
//! coll.insert(&ids, &vectors)?;
//! let results = coll.search(&vectors[..8], 4, 2, SearchMode::Exact)?;
//! assert_eq!(results.get(0).unwrap()[0].id(), 10);
//! # Ok::<(), vexfs::Error>(())
//! ```
//!
//! Errors say what failed and why, and keep the errno for programs:
//!
//! ```
//! use vexfs::{Errno, Error, Operation};
//!
//! let err = Error::Ioctl {
//!     path: "/mnt/vex/notes".into(),
//!     operation: Operation::Insert { count: 3, dim: 5 },
//!     errno: Errno::EINVAL,
//! };
//! assert_eq!(
//!     err.to_string(),
//!     "/mnt/vex/notes: invalid request: a batch of 3 vectors of dim 5 \
//!      (it must equal the collection's)"
//! );
//! assert_eq!(err.errno(), Some(Errno::EINVAL));
//!
//! // Anything not on VexFS is refused before any ioctl.
//! let err = vexfs::Mount::open("/").unwrap_err();
//! assert_eq!(err.to_string(), "/: not a VexFS filesystem");
//! ```
#![deny(missing_docs)]

mod collection;
mod error;
mod file;
mod filter;
mod handle;
mod mount;
mod params;
mod sys;

pub use collection::{Collection, Hit, Iter, SearchResults, StoredVector, MISSING_PROBE_MAX};
pub use error::{io_error_message, Error, Operation, Result};
pub use file::CollectionFile;
pub use filter::SearchFilter;
pub use mount::Mount;
pub use nix::errno::Errno;
pub use params::{
    CollectionParams, HnswParams, Index, IndexKind, Metric, ParseNameError, Quantize, SearchMode,
};
pub use vexfs_abi as abi;
