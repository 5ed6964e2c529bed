//! A simulated disk for tests: it remembers what was fsynced, so [`SimStorage::power_loss`]
//! can drop everything else (unsynced bytes, and creations, renames and removals whose
//! directory was not fsynced), and it fails writes, fsyncs and other calls on demand.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::storage::{Storage, StorageFile};

/// errno of "No space left on device" and "Input/output error" on Linux.
const ENOSPC: i32 = 28;
const EIO: i32 = 5;

/// A call [`SimStorage::fail`] can make fail with EIO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimFault {
    /// Writing to a file (nothing is written).
    Write,
    /// fsync or fdatasync of a file.
    Sync,
    /// fsync of a directory.
    SyncDir,
    /// Creating a file.
    Create,
    /// Renaming a file.
    Rename,
    /// Removing a file.
    Remove,
}

/// An in-memory file system that can lose power. Cheap to clone; clones share the disk.
#[derive(Debug, Clone, Default)]
pub struct SimStorage {
    disk: Arc<Mutex<Disk>>,
}

#[derive(Debug, Default)]
struct Disk {
    /// Bumped by every power loss; handles opened before it fail.
    generation: u64,
    next_inode: u64,
    inodes: HashMap<u64, Inode>,
    /// The directory entries as the running system sees them.
    names: BTreeMap<PathBuf, u64>,
    /// The directory entries a power loss goes back to.
    durable: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    /// Bytes the disk holds; a write past it writes what fits and fails with ENOSPC.
    capacity: Option<u64>,
    faults: BTreeSet<SimFault>,
    /// Calls that change the disk left before the power goes (see `cut_power_after`).
    cut_after: Option<u64>,
    /// The power is gone: every call fails until `power_loss` brings the disk back.
    dead: bool,
}

#[derive(Debug, Default, Clone)]
struct Inode {
    data: Vec<u8>,
    /// The contents as of the last fsync.
    synced: Vec<u8>,
}

struct SimFile {
    disk: Arc<Mutex<Disk>>,
    inode: u64,
    generation: u64,
}

impl SimStorage {
    /// An empty disk without faults or a size limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Limits the bytes stored in files (`None`: unlimited). Writes past it fail with ENOSPC
    /// after writing the part that fits, as a real disk does.
    pub fn set_capacity(&self, capacity: Option<u64>) {
        self.lock().capacity = capacity;
    }

    /// Makes every later call of kind `fault` fail with EIO (`on`), or work again.
    pub fn fail(&self, fault: SimFault, on: bool) {
        let mut disk = self.lock();
        if on {
            disk.faults.insert(fault);
        } else {
            disk.faults.remove(&fault);
        }
    }

    /// Makes the power fail during the call that changes the disk (create, write, fsync,
    /// truncate, rename, remove, directory fsync) `calls` calls from now (0: the next one).
    /// That call and every later one fail with EIO without effect, as if the machine had
    /// stopped there; [`SimStorage::power_loss`] then brings back what was durable.
    pub fn cut_power_after(&self, calls: u64) {
        self.lock().cut_after = Some(calls);
    }

    /// Cuts the power: every file goes back to its last fsynced contents and the directory to
    /// its last fsynced entries. With `torn = Some(seed)`, each file keeps a prefix (chosen from
    /// `seed`) of the bytes written since its last fsync, counted from the first byte that
    /// differs from the fsynced contents, as a torn write would; past that prefix the file
    /// holds its fsynced bytes again, where it had any. Open files stop working; faults stay
    /// set.
    pub fn power_loss(&self, torn: Option<u64>) {
        let mut disk = self.lock();
        let mut seed = torn.unwrap_or(0);
        disk.generation += 1;
        disk.dead = false;
        disk.cut_after = None;
        disk.names = disk.durable.clone();
        let live: BTreeSet<u64> = disk.durable.values().copied().collect();
        disk.inodes.retain(|number, _| live.contains(number));
        for inode in disk.inodes.values_mut() {
            let same = inode
                .data
                .iter()
                .zip(&inode.synced)
                .take_while(|(now, synced)| now == synced)
                .count();
            let unsynced = inode.data.len() - same;
            let kept = match torn {
                Some(_) => next_random(&mut seed) as usize % (unsynced + 1),
                None => 0,
            };
            let mut data = inode.data[..same + kept].to_vec();
            if let Some(older) = inode.synced.get(data.len()..) {
                data.extend_from_slice(older);
            }
            inode.data = data;
        }
    }

    /// The current contents of `path`, if it exists.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let disk = self.lock();
        let inode = disk.names.get(path)?;
        Some(disk.inodes[inode].data.clone())
    }

    /// Bytes held in files.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used()
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn create(&self, path: &Path, must_be_new: bool) -> io::Result<Arc<dyn StorageFile>> {
        let mut disk = self.lock();
        disk.change(Some(SimFault::Create))?;
        disk.check_parent(path)?;
        let existing = disk.names.get(path).copied();
        let inode = match existing {
            Some(_) if must_be_new => return Err(io::ErrorKind::AlreadyExists.into()),
            Some(inode) => {
                disk.inodes.entry(inode).or_default().data.clear();
                inode
            }
            None => {
                disk.next_inode += 1;
                let inode = disk.next_inode;
                disk.inodes.insert(inode, Inode::default());
                disk.names.insert(path.to_path_buf(), inode);
                inode
            }
        };
        Ok(self.handle(&disk, inode))
    }

    fn handle(&self, disk: &Disk, inode: u64) -> Arc<dyn StorageFile> {
        Arc::new(SimFile {
            disk: Arc::clone(&self.disk),
            inode,
            generation: disk.generation,
        })
    }
}

impl Disk {
    /// Fails a call that changes the disk if the power is (now) gone or `fault` is set.
    fn change(&mut self, fault: Option<SimFault>) -> io::Result<()> {
        match self.cut_after {
            Some(0) => {
                self.cut_after = None;
                self.dead = true;
            }
            Some(left) => self.cut_after = Some(left - 1),
            None => {}
        }
        self.alive()?;
        if fault.is_some_and(|fault| self.faults.contains(&fault)) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        Ok(())
    }

    /// Fails any call while the power is gone.
    fn alive(&self) -> io::Result<()> {
        if self.dead {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        Ok(())
    }

    fn check_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(parent) if self.dirs.contains(parent) => Ok(()),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn used(&self) -> u64 {
        let live: BTreeSet<u64> = self.names.values().copied().collect();
        live.iter().map(|n| self.inodes[n].data.len() as u64).sum()
    }
}

impl Storage for SimStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.lock();
        disk.alive()?;
        for ancestor in dir.ancestors() {
            disk.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        self.create(path, true)
    }

    fn create_truncate(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        self.create(path, false)
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let disk = self.lock();
        disk.alive()?;
        let inode = *disk.names.get(path).ok_or(io::ErrorKind::NotFound)?;
        Ok(self.handle(&disk, inode))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.lock();
        disk.change(Some(SimFault::Rename))?;
        disk.check_parent(to)?;
        let inode = disk.names.remove(from).ok_or(io::ErrorKind::NotFound)?;
        disk.names.insert(to.to_path_buf(), inode);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.lock();
        disk.change(Some(SimFault::Remove))?;
        disk.names.remove(path).ok_or(io::ErrorKind::NotFound)?;
        Ok(())
    }

    fn file_names(&self, dir: &Path) -> io::Result<Vec<String>> {
        let disk = self.lock();
        disk.alive()?;
        if !disk.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(disk
            .names
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.lock();
        disk.change(Some(SimFault::SyncDir))?;
        let Disk { names, durable, .. } = &mut *disk;
        durable.retain(|path, _| path.parent() != Some(dir));
        for (path, inode) in names.iter() {
            if path.parent() == Some(dir) {
                durable.insert(path.clone(), *inode);
            }
        }
        Ok(())
    }
}

impl SimFile {
    /// The disk, if this handle is from before no power loss.
    fn disk(&self) -> io::Result<MutexGuard<'_, Disk>> {
        let disk = self.disk.lock().unwrap_or_else(PoisonError::into_inner);
        if disk.generation != self.generation {
            return Err(io::Error::other("file opened before a power loss"));
        }
        Ok(disk)
    }

    fn with_inode<T>(&self, f: impl FnOnce(&mut Inode) -> T) -> io::Result<T> {
        let mut disk = self.disk()?;
        disk.alive()?;
        let inode = disk
            .inodes
            .get_mut(&self.inode)
            .ok_or(io::ErrorKind::NotFound)?;
        Ok(f(inode))
    }

    fn sync(&self) -> io::Result<()> {
        self.disk()?.change(Some(SimFault::Sync))?;
        self.with_inode(|inode| inode.synced.clone_from(&inode.data))
    }
}

impl StorageFile for SimFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let offset = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let mut disk = self.disk()?;
        disk.change(Some(SimFault::Write))?;
        let room = disk
            .capacity
            .map_or(u64::MAX, |capacity| capacity.saturating_sub(disk.used()));
        let inode = disk
            .inodes
            .get_mut(&self.inode)
            .ok_or(io::ErrorKind::NotFound)?;
        let limit = inode
            .data
            .len()
            .saturating_add(usize::try_from(room).unwrap_or(usize::MAX));
        let fits = (offset.saturating_add(buf.len()).min(limit)).saturating_sub(offset);
        if fits > 0 {
            let end = offset + fits;
            if inode.data.len() < end {
                inode.data.resize(end, 0);
            }
            inode.data[offset..end].copy_from_slice(&buf[..fits]);
        }
        if fits < buf.len() {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync()
    }

    fn size(&self) -> io::Result<u64> {
        self.with_inode(|inode| inode.data.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        // A truncate counts towards a power cut, but no fault makes it fail.
        self.disk()?.change(None)?;
        self.with_inode(|inode| inode.data.resize(len, 0))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.with_inode(|inode| {
            let start =
                usize::try_from(offset).map_or(inode.data.len(), |o| o.min(inode.data.len()));
            let read = buf.len().min(inode.data.len() - start);
            buf[..read].copy_from_slice(&inode.data[start..start + read]);
            read
        })
    }
}

/// xorshift64: deterministic, good enough to pick torn-write lengths.
fn next_random(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk() -> (SimStorage, PathBuf) {
        let sim = SimStorage::new();
        let dir = PathBuf::from("/data");
        sim.create_dir_all(&dir).unwrap();
        (sim, dir)
    }

    #[test]
    fn power_loss_keeps_only_what_was_fsynced() {
        let (sim, dir) = disk();
        let synced = dir.join("a");
        let file = sim.create_new(&synced).unwrap();
        file.write_at(b"kept", 0).unwrap();
        file.sync_data().unwrap();
        sim.sync_dir(&dir).unwrap();
        file.write_at(b" lost", 4).unwrap();
        let unsynced_dir = dir.join("b");
        sim.create_new(&unsynced_dir).unwrap().sync_data().unwrap();
        sim.power_loss(None);
        assert_eq!(sim.contents(&synced).unwrap(), b"kept");
        assert_eq!(sim.contents(&unsynced_dir), None);
        assert!(file.write_at(b"x", 0).is_err(), "old handles are dead");
    }

    #[test]
    fn unsynced_renames_and_removes_are_undone() {
        let (sim, dir) = disk();
        let (a, b) = (dir.join("a"), dir.join("b"));
        let file = sim.create_new(&a).unwrap();
        file.write_at(b"1", 0).unwrap();
        file.sync_all().unwrap();
        sim.sync_dir(&dir).unwrap();
        sim.rename(&a, &b).unwrap();
        sim.power_loss(None);
        assert_eq!(sim.contents(&a).unwrap(), b"1");
        assert_eq!(sim.contents(&b), None);
        sim.remove_file(&a).unwrap();
        sim.power_loss(None);
        assert_eq!(sim.contents(&a).unwrap(), b"1");
    }

    #[test]
    fn a_torn_write_keeps_a_prefix_of_the_unsynced_bytes() {
        let mut lengths = BTreeSet::new();
        for seed in 1..50 {
            let (sim, dir) = disk();
            let path = dir.join("a");
            let file = sim.create_new(&path).unwrap();
            sim.sync_dir(&dir).unwrap();
            file.write_at(b"ab", 0).unwrap();
            file.sync_data().unwrap();
            file.write_at(b"cdef", 2).unwrap();
            sim.power_loss(Some(seed));
            let data = sim.contents(&path).unwrap();
            assert!(b"abcdef".starts_with(&data) && data.len() >= 2, "{data:?}");
            lengths.insert(data.len());
        }
        assert!(lengths.len() > 2, "{lengths:?}");
    }

    #[test]
    fn an_overwrite_keeps_the_fsynced_bytes_after_whatever_part_of_it_survives() {
        let mut torn = BTreeSet::new();
        for seed in 1..50 {
            let (sim, dir) = disk();
            let path = dir.join("a");
            let file = sim.create_new(&path).unwrap();
            sim.sync_dir(&dir).unwrap();
            file.write_at(b"ab\0\0\0\0", 0).unwrap();
            file.sync_data().unwrap();
            file.write_at(b"cde", 2).unwrap();
            file.write_at(b"\0\0", 6).unwrap();
            let torn_seed = (seed > 1).then_some(seed);
            sim.power_loss(torn_seed);
            let data = sim.contents(&path).unwrap();
            let kept = data
                .iter()
                .zip(b"abcde\0\0\0")
                .take_while(|(a, b)| a == b)
                .count();
            assert!(kept >= 2, "{data:?}");
            let expected = [&b"abcde\0\0\0"[..kept], &b"ab\0\0\0\0"[kept.min(6)..]].concat();
            assert_eq!(data, expected, "seed {torn_seed:?}");
            if torn_seed.is_none() {
                assert_eq!(data, b"ab\0\0\0\0");
            }
            torn.insert(data);
        }
        assert!(torn.len() > 3, "{torn:?}");
    }

    #[test]
    fn a_full_disk_writes_what_fits_then_fails_with_enospc() {
        let (sim, dir) = disk();
        sim.set_capacity(Some(5));
        let file = sim.create_new(&dir.join("a")).unwrap();
        let error = file.write_at(b"1234567", 0).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(ENOSPC));
        assert_eq!(file.size().unwrap(), 5);
        file.set_len(2).unwrap();
        file.write_at(b"345", 2).unwrap();
        file.write_at(b"ab", 1).unwrap();
        assert_eq!(
            file.write_at(b"cd", 4).unwrap_err().raw_os_error(),
            Some(ENOSPC)
        );
        assert_eq!(sim.contents(&dir.join("a")).unwrap(), b"1ab4c");
        sim.set_capacity(None);
        file.write_at(b"67", 5).unwrap();
        assert_eq!(sim.used_bytes(), 7);
    }

    #[test]
    fn a_power_cut_stops_every_later_call() {
        let (sim, dir) = disk();
        let file = sim.create_new(&dir.join("a")).unwrap();
        sim.sync_dir(&dir).unwrap();
        sim.cut_power_after(1);
        file.write_at(b"1", 0).unwrap();
        assert!(file.sync_data().is_err());
        assert!(file.write_at(b"2", 1).is_err());
        assert!(sim.file_names(&dir).is_err());
        sim.power_loss(None);
        assert_eq!(sim.contents(&dir.join("a")).unwrap(), b"");
        let file = sim.open(&dir.join("a")).unwrap();
        file.write_at(b"3", 0).unwrap();
    }

    #[test]
    fn faults_fail_with_eio_until_cleared() {
        let (sim, dir) = disk();
        let file = sim.create_new(&dir.join("a")).unwrap();
        sim.fail(SimFault::Sync, true);
        assert_eq!(file.sync_data().unwrap_err().raw_os_error(), Some(EIO));
        sim.fail(SimFault::Sync, false);
        file.sync_data().unwrap();
    }
}
