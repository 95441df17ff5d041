//! The server-wide sources: EVAL scripts by SHA1, and function libraries.
//!
//! Only sources and metadata live here; each thread's Lua state compiles what it runs
//! (`vm.rs`) and notices changes through the version counters.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use bytes::Bytes;
use parking_lot::RwLock;

/// One cached EVAL script.
pub struct Script {
    /// The source as sent (SCRIPT SHOW).
    pub source: Bytes,
    /// What Lua compiles: the source with the shebang line blanked.
    pub body: Vec<u8>,
    /// `shebang::script_flag` bits.
    pub flags: u32,
}

#[derive(Default)]
pub struct ScriptCache {
    scripts: RwLock<HashMap<String, Arc<Script>>>,
    /// Bumped by SCRIPT FLUSH: threads drop their compiled scripts.
    epoch: AtomicU64,
}

/// The flags of the scripts this thread has run, for one cache at one epoch: EVALSHA finds
/// its script's flags without taking the shared lock (which both workers would write).
struct LocalFlags {
    cache: usize,
    epoch: u64,
    flags: HashMap<String, u32, foldhash::fast::RandomState>,
}

thread_local! {
    static LOCAL_FLAGS: RefCell<LocalFlags> = RefCell::new(LocalFlags {
        cache: 0,
        epoch: 0,
        flags: HashMap::default(),
    });
}

impl ScriptCache {
    /// The flags of cached script `sha` (lowercase), `None` if it is not cached.
    pub fn flags(&self, sha: &str) -> Option<u32> {
        let epoch = self.epoch();
        let me = self as *const ScriptCache as usize;
        LOCAL_FLAGS.with(|local| {
            let mut local = local.borrow_mut();
            if local.cache != me || local.epoch != epoch {
                local.flags.clear();
                local.cache = me;
                local.epoch = epoch;
            }
            if let Some(flags) = local.flags.get(sha) {
                return Some(*flags);
            }
            // Scripts leave the cache only by SCRIPT FLUSH, which moves the epoch: until
            // then what this thread saw stays true.
            let flags = self.get(sha)?.flags;
            local.flags.insert(sha.to_string(), flags);
            Some(flags)
        })
    }

    pub fn get(&self, sha: &str) -> Option<Arc<Script>> {
        self.scripts.read().get(sha).cloned()
    }

    pub fn insert(&self, sha: String, script: Script) -> Arc<Script> {
        let script = Arc::new(script);
        self.scripts.write().insert(sha, script.clone());
        script
    }

    pub fn contains(&self, sha: &str) -> bool {
        self.scripts.read().contains_key(sha)
    }

    /// SCRIPT FLUSH: returns the old scripts so they can be freed elsewhere (ASYNC).
    pub fn flush(&self) -> HashMap<String, Arc<Script>> {
        let old = std::mem::take(&mut *self.scripts.write());
        self.epoch.fetch_add(1, SeqCst);
        old
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(SeqCst)
    }

    pub fn len(&self) -> usize {
        self.scripts.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of source kept (INFO used_memory_scripts_eval).
    pub fn memory(&self) -> usize {
        self.scripts
            .read()
            .values()
            .map(|s| s.source.len() + s.body.len() + 40)
            .sum()
    }
}

/// A function as registered by its library.
#[derive(Clone)]
pub struct FunctionMeta {
    pub name: String,
    pub description: Option<Bytes>,
    /// `shebang::script_flag` bits.
    pub flags: u32,
}

/// A loaded library.
pub struct Library {
    pub name: String,
    pub code: Bytes,
    /// What Lua compiles: the code with its shebang line blanked.
    pub body: Vec<u8>,
    pub functions: BTreeMap<String, FunctionMeta>,
}

#[derive(Default)]
pub struct LibraryState {
    pub libraries: BTreeMap<String, Arc<Library>>,
    /// Function name in lower case ([`function_key`]) → library name.
    pub functions: HashMap<String, String>,
}

#[derive(Default)]
pub struct Libraries {
    state: RwLock<LibraryState>,
    /// Bumped by every change: threads rebuild their compiled functions.
    version: AtomicU64,
}

impl Libraries {
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, LibraryState> {
        self.state.read()
    }

    /// Changes the libraries under the write lock and bumps the version.
    pub fn update<R>(&self, f: impl FnOnce(&mut LibraryState) -> R) -> R {
        let mut state = self.state.write();
        let r = f(&mut state);
        self.version.fetch_add(1, SeqCst);
        r
    }

    pub fn version(&self) -> u64 {
        self.version.load(SeqCst)
    }

    /// The function `name` (any case, as Valkey finds functions), its library, and the name
    /// as it was registered.
    pub fn function(&self, name: &str) -> Option<(FunctionMeta, Arc<Library>, String)> {
        let state = self.state.read();
        let lib = state
            .libraries
            .get(state.functions.get(&function_key(name))?)?;
        let (registered, meta) = match lib.functions.get_key_value(name) {
            Some(found) => found,
            None => lib
                .functions
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))?,
        };
        Some((meta.clone(), lib.clone(), registered.clone()))
    }
}

/// The key of the function index: function names are case-insensitive across libraries.
pub fn function_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl LibraryState {
    /// Whether a function of this name (in any case) belongs to another library than `lib`.
    pub fn taken_elsewhere(&self, function: &str, lib: &str) -> bool {
        self.owner(function).is_some_and(|owner| owner != lib)
    }

    /// The library that has a function of this name (case-insensitively), if any.
    pub fn owner(&self, function: &str) -> Option<&str> {
        self.functions
            .get(&function_key(function))
            .map(String::as_str)
    }

    /// Adds `lib`, replacing a library of the same name.
    pub fn insert(&mut self, lib: Library) {
        self.remove(&lib.name.clone());
        for name in lib.functions.keys() {
            self.functions.insert(function_key(name), lib.name.clone());
        }
        self.libraries.insert(lib.name.clone(), Arc::new(lib));
    }

    pub fn remove(&mut self, name: &str) -> Option<Arc<Library>> {
        let lib = self.libraries.remove(name)?;
        for f in lib.functions.keys() {
            self.functions.remove(&function_key(f));
        }
        Some(lib)
    }

    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// Bytes the libraries' code and descriptions take, outside the Lua states (INFO
    /// used_memory_functions): their sources, names and function entries.
    pub fn memory(&self) -> usize {
        // Rough per-entry bookkeeping (map nodes, `Arc`s, the name index), so that empty
        // libraries and functions still count.
        const LIBRARY_OVERHEAD: usize = 96;
        const FUNCTION_OVERHEAD: usize = 64;
        self.libraries
            .values()
            .map(|lib| {
                let functions: usize = lib
                    .functions
                    .values()
                    .map(|f| {
                        // The name is kept twice: in the library and in the index.
                        2 * f.name.len()
                            + f.description.as_ref().map_or(0, |d| d.len())
                            + FUNCTION_OVERHEAD
                    })
                    .sum();
                lib.name.len() + lib.code.len() + lib.body.len() + LIBRARY_OVERHEAD + functions
            })
            .sum()
    }
}
