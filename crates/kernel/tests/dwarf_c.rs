//! DWARF → BTF on small shared objects gcc builds at test time from the C below, as DWARF 4
//! (bitfields in the old `DW_AT_bit_offset` form) and DWARF 5 (`DW_AT_data_bit_offset`). The
//! expected layout is the compiler's own: `offsetof`/`sizeof` values and, for bitfields, the
//! bit pattern of a variable with one field set to all ones, all read from the built file.
//! Skipped (with a note) where gcc is not installed. Also: System.map parsing, the checks that
//! refuse a vmlinux or System.map of another build, and bad input that must give typed errors.

mod btf_common;

use lockscope_dump::VmcoreInfo;
use lockscope_kernel::btf::{Btf, Kind, Linkage};
use lockscope_kernel::dwarf::{DwarfErrorKind, Vmlinux};
use lockscope_kernel::kallsyms::{AddressScheme, Symbols};
use lockscope_kernel::sysmap;
use object::{Object, ObjectSection, ObjectSymbol};
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = r#"
#include <stddef.h>

struct list { struct list *next, *prev; };
typedef unsigned long ulong_t;
typedef ulong_t u64_t;
typedef const u64_t cu64_t;
typedef struct list list_t;
typedef list_t *list_p;
enum color { RED = -2, GREEN = 5, BLUE = 0x7fffffff };
enum big { BIG_A = 0x100000000ULL, BIG_B = 1 };
enum __attribute__((packed)) small { S0, S1 = 200 };
enum { ANON_ONE = 1, ANON_TWO } g_anon;
struct opaque;
union u { int i; float f; char c[3]; };
struct bits {
    unsigned a:3;
    unsigned b:5;
    int c:7;
    unsigned long long d:40;
    char e;
    unsigned f:1;
    long g;
    unsigned h:12;
};
typedef void (*callback_t)(int, const char *, ...);
struct outer {
    int x;
    union {
        int ui;
        struct { short s1; short s2; };
    };
    struct { long al; char ac[5]; } named_anon;
    struct list link;
    int matrix[3][4];
    callback_t cb;
    int (*handlers[2])(struct outer *);
    struct opaque *op;
    volatile u64_t vcount;
    cu64_t ccount;
    char *restrict rp;
    enum color color;
    enum small small;
    enum big big;
    union u un;
    struct bits bits;
    _Bool flag;
    double dbl;
    long double ldbl;
    _Atomic int at;
    __int128 wide;
    list_p lp;
    unsigned char tail[];
};

struct outer g_outer;
static struct bits s_bits __attribute__((used));
const int g_table[7] = { 1 };
int g_percpu __attribute__((section(".data..percpu"))) = 3;
enum color g_color = GREEN;

/* Shared with the second unit (identical there), and a name both units define differently. */
struct holder { struct list *head; int n; };
struct holder g_holder;
struct dup { int a; };
struct dup g_dup1;
extern int g_decl_then_def;

#define E(t, m) { #t "." #m, offsetof(struct t, m) }
struct expect { char path[40]; unsigned long value; };
struct expect lt_offsets[] = {
    E(outer, x), E(outer, ui), E(outer, s1), E(outer, s2), E(outer, named_anon),
    E(outer, named_anon.al), E(outer, named_anon.ac), E(outer, named_anon.ac[3]),
    E(outer, link), E(outer, link.prev), E(outer, matrix), E(outer, matrix[1]),
    E(outer, matrix[2][3]), E(outer, cb), E(outer, handlers), E(outer, handlers[1]),
    E(outer, op), E(outer, vcount), E(outer, ccount), E(outer, rp), E(outer, color),
    E(outer, small), E(outer, big), E(outer, un), E(outer, un.c[2]), E(outer, bits),
    E(outer, bits.e), E(outer, bits.g), E(outer, flag), E(outer, dbl), E(outer, ldbl),
    E(outer, at), E(outer, wide), E(outer, lp), E(outer, tail),
};
#define S(t) { #t, sizeof(t) }
struct expect lt_sizes[] = {
    S(struct outer), S(struct bits), S(union u), S(struct list), S(enum color), S(enum small),
    S(enum big), S(list_t), S(cu64_t), S(callback_t), S(long double), S(__int128),
};
#define M(f) struct bits lt_mask_##f = { .f = -1 };
M(a) M(b) M(c) M(d) M(f) M(h)
"#;

/// A second unit: `struct list` only declared, `struct holder` as in the first, another
/// `struct dup`, and a variable defined after an `extern` declaration (DW_AT_specification).
const SECOND: &str = r#"
struct list;
struct holder { struct list *head; int n; };
struct holder g_holder2;
struct dup { long a; long b; };
struct dup g_dup2;
extern int g_decl_then_def;
int g_decl_then_def = 7;
struct list *g_list_ptr;
"#;

/// A built shared object, removed on drop.
struct Built {
    dir: PathBuf,
    so: PathBuf,
}

impl Drop for Built {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("lockscope-dwarf-{}-{tag}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds the C source with these gcc flags; None (and a note) without gcc.
fn build(tag: &str, flags: &[&str]) -> Option<Built> {
    if Command::new("gcc").arg("--version").output().is_err() {
        eprintln!("gcc not found: DWARF tests on built objects skipped");
        return None;
    }
    let dir = scratch(tag);
    let src = dir.join("t.c");
    std::fs::write(&src, SOURCE).unwrap();
    let second = dir.join("u2.c");
    std::fs::write(&second, SECOND).unwrap();
    let so = dir.join("t.so");
    let out = Command::new("gcc")
        .args(flags)
        .args(["-O0", "-shared", "-nostdlib", "-fPIC", "-Wl,--build-id=sha1", "-o"])
        .arg(&so)
        .arg(&src)
        .arg(&second)
        .output()
        .unwrap();
    assert!(out.status.success(), "gcc {flags:?}: {}", String::from_utf8_lossy(&out.stderr));
    Some(Built { dir, so })
}

/// The bytes of a symbol of the built file.
fn symbol_bytes(path: &Path, name: &str) -> Vec<u8> {
    let data = std::fs::read(path).unwrap();
    let f = object::File::parse(&*data).unwrap();
    let s = f.symbols().find(|s| s.name() == Ok(name)).unwrap_or_else(|| panic!("no {name}"));
    let sec = f.section_by_index(s.section_index().unwrap()).unwrap();
    let at = (s.address() - sec.address()) as usize;
    sec.data().unwrap()[at..at + s.size() as usize].to_vec()
}

/// `struct expect` entries: (path, value).
fn expectations(path: &Path, name: &str) -> Vec<(String, u64)> {
    symbol_bytes(path, name)
        .chunks_exact(48)
        .map(|c| {
            let end = c[..40].iter().position(|&b| b == 0).unwrap();
            (String::from_utf8(c[..end].to_vec()).unwrap(), u64::from_le_bytes(c[40..48].try_into().unwrap()))
        })
        .collect()
}

fn converted(b: &Built) -> Btf<'static> {
    let vm = Vmlinux::open(&b.so).unwrap();
    let (blob, stats) = vm.to_btf().unwrap();
    assert!(stats.units >= 1 && stats.type_dies > 30, "{stats:?}");
    assert_eq!(stats.unresolved_refs, 0);
    Btf::parse(blob).unwrap()
}

fn check_layouts(tag: &str, flags: &[&str]) {
    let Some(b) = build(tag, flags) else { return };
    let btf = converted(&b);
    let stats = btf_common::check_blob(&btf);
    assert!(stats.bitfields >= 6 && stats.anonymous_members >= 2 && stats.vars >= 5, "{stats:?}");
    // Every offsetof the compiler computed.
    let offsets = expectations(&b.so, "lt_offsets");
    assert_eq!(offsets.len(), 35);
    for (path, want) in &offsets {
        let got = btf.member_path(path).unwrap_or_else(|e| panic!("{tag}: {path}: {e}"));
        assert_eq!((got.byte_offset(), got.bit_offset % 8), (*want, 0), "{tag}: {path}");
    }
    for (ty, want) in expectations(&b.so, "lt_sizes") {
        let id = btf.lookup(&ty).unwrap_or_else(|e| panic!("{tag}: {ty}: {e}"));
        assert_eq!(btf.size_of(id).unwrap(), want, "{tag}: sizeof({ty})");
    }
    // Bitfields: the bits each field covers in a variable with only that field set.
    for f in ["a", "b", "c", "d", "f", "h"] {
        let bytes = symbol_bytes(&b.so, &format!("lt_mask_{f}"));
        let set: Vec<u64> =
            (0..bytes.len() as u64 * 8).filter(|&i| bytes[(i / 8) as usize] >> (i % 8) & 1 == 1).collect();
        let m = btf.member_of("struct bits", f).unwrap();
        assert_eq!(
            (m.bit_offset, m.bitfield_size),
            (set[0], Some(set.len() as u8)),
            "{tag}: bits.{f} covers bits {set:?}"
        );
    }
    let bits = btf.ty(btf.lookup("struct bits").unwrap()).unwrap();
    assert!(bits.kind_flag(), "{tag}: bitfield widths in the member offsets");
    // Kinds and spellings.
    let name_of = |spec: &str| btf.type_name(btf.member_path(spec).unwrap().ty).unwrap();
    assert_eq!(name_of("outer.cb"), "callback_t");
    assert_eq!(
        btf.type_name(btf.resolve(btf.member_path("outer.cb").unwrap().ty).unwrap()).unwrap(),
        "void (*)(int, const char *, ...)"
    );
    assert_eq!(name_of("outer.handlers"), "int (*[2])(struct outer *)");
    assert_eq!(name_of("outer.matrix"), "int [3][4]");
    assert_eq!(name_of("outer.vcount"), "volatile u64_t");
    assert_eq!(name_of("outer.ccount"), "cu64_t");
    if tag != "d2" {
        // (DWARF 2 has no restrict.)
        assert_eq!(name_of("outer.rp"), "char *restrict");
    }
    assert_eq!(name_of("outer.op"), "struct opaque *");
    assert_eq!(name_of("outer.at"), "int", "{tag}: _Atomic is dropped");
    assert_eq!(name_of("outer.tail"), "unsigned char [0]", "{tag}: flexible array");
    assert_eq!(name_of("outer.lp"), "list_p");
    assert_eq!(name_of("outer.flag"), "_Bool");
    assert!(btf.int_encoding(btf.lookup("_Bool").unwrap()).unwrap().unwrap().is_bool);
    assert!(btf.int_encoding(btf.lookup("int").unwrap()).unwrap().unwrap().signed);
    assert_eq!(btf.ty(btf.lookup("double").unwrap()).unwrap().kind(), Kind::Float);
    assert_eq!(btf.ty(btf.lookup("struct opaque").unwrap()).unwrap().kind(), Kind::Fwd);
    // Typedef chains resolve to the base type.
    let cu = btf.lookup("cu64_t").unwrap();
    assert_eq!(btf.type_name(btf.resolve(cu).unwrap()).unwrap(), "long unsigned int");
    assert_eq!(btf.type_name(btf.ty(cu).unwrap().target().unwrap()).unwrap(), "const u64_t");
    let lp = btf.resolved(btf.lookup("list_p").unwrap()).unwrap();
    assert_eq!(btf.type_name(lp.id()).unwrap(), "list_t *");
    // Enums: signed values, a 64-bit one, a packed one, an anonymous one.
    let color = btf.lookup("enum color").unwrap();
    assert_eq!(btf.enum_value(color, "RED").unwrap().value(), -2);
    assert_eq!(btf.enum_value(color, "BLUE").unwrap().value(), 0x7fff_ffff);
    assert_eq!(btf.enum_name(color, (-2i64) as u64), Some("RED"));
    let big = btf.ty(btf.lookup("enum big").unwrap()).unwrap();
    assert_eq!((big.kind(), big.size()), (Kind::Enum64, Some(8)));
    assert_eq!(btf.enum_value(big.id(), "BIG_A").unwrap().value(), 0x1_0000_0000);
    assert_eq!(btf.ty(btf.lookup("enum small").unwrap()).unwrap().size(), Some(1));
    assert_eq!(btf.enum_value(btf.lookup("enum small").unwrap(), "S1").unwrap().value(), 200);
    assert_eq!(btf.find_enumerator("ANON_TWO").unwrap().1.value(), 2);
    // One type per definition: the list and its typedef are not duplicated.
    assert_eq!(btf.find_all("list").len(), 1);
    assert_eq!(btf.find_all("outer").len(), 1);
    // Variables: typed, placed in their sections at their link-time offsets.
    let elf = std::fs::read(&b.so).unwrap();
    let elf = object::File::parse(&*elf).unwrap();
    for (var, ty, section) in [
        ("g_outer", "struct outer", ".bss"),
        ("s_bits", "struct bits", ".bss"),
        ("g_table", "const int [7]", ".rodata"),
        // (The default linker script folds .data.* sections into .data.)
        ("g_percpu", "int", ".data"),
        ("g_color", "enum color", ".data"),
    ] {
        let v = btf.find_var(var).unwrap_or_else(|| panic!("{tag}: no VAR {var}"));
        // (A const array is CONST of an ARRAY of const elements, as gcc describes it.)
        assert_eq!(btf.type_name(btf.resolve(v.ty).unwrap()).unwrap(), ty, "{tag}: {var}");
        let (sec, off, size) = v.section.unwrap_or_else(|| panic!("{tag}: {var} in no DATASEC"));
        assert_eq!(btf.ty(sec).unwrap().name(), section, "{tag}: {var}");
        let sym = elf.symbols().find(|s| s.name() == Ok(var)).unwrap();
        let s = elf.section_by_name(section).unwrap();
        assert_eq!((off as u64, size as u64), (sym.address() - s.address(), sym.size()), "{tag}: {var}");
        let want = if var == "s_bits" { Linkage::Static } else { Linkage::Global };
        assert_eq!(v.linkage, want, "{tag}: {var}");
    }
    assert!(btf.find_var("lt_mask_a").is_some());
    // Across units: one `struct holder`; the second unit's declaration of `struct list` stands
    // for the first unit's definition; the two different `struct dup` both stay, each variable
    // with its own.
    let holders: Vec<_> =
        btf.find_all("holder").into_iter().filter(|&i| btf.ty(i).unwrap().kind() == Kind::Struct).collect();
    assert_eq!(holders.len(), 1, "{tag}");
    for var in ["g_holder", "g_holder2"] {
        assert_eq!(btf.find_var(var).unwrap().ty, holders[0], "{tag}: {var}");
    }
    let list_ptr = btf.resolved(btf.find_var("g_list_ptr").unwrap().ty).unwrap();
    assert_eq!(btf.ty(list_ptr.target().unwrap()).unwrap().kind(), Kind::Struct, "{tag}: struct list resolved");
    assert_eq!(btf.find_all("dup").len(), 2, "{tag}");
    assert_eq!(btf.size_of(btf.find_var("g_dup1").unwrap().ty), Ok(4), "{tag}");
    assert_eq!(btf.size_of(btf.find_var("g_dup2").unwrap().ty), Ok(16), "{tag}");
    let v = btf.find_var("g_decl_then_def").unwrap();
    assert_eq!((btf.type_name(v.ty).unwrap().as_str(), v.linkage), ("int", Linkage::Global), "{tag}");
    // The same input gives the same bytes.
    assert_eq!(Vmlinux::open(&b.so).unwrap().to_btf().unwrap().0, btf.bytes(), "{tag}: deterministic");
}

#[test]
fn dwarf5_layouts_match_the_compiler() {
    check_layouts("d5", &["-g", "-gdwarf-5"]);
}

#[test]
fn dwarf4_layouts_match_the_compiler() {
    check_layouts("d4", &["-g", "-gdwarf-4"]);
}

#[test]
fn dwarf2_layouts_match_the_compiler() {
    // Strict DWARF 2: member offsets as `DW_OP_plus_uconst` blocks, old-style bitfields.
    check_layouts("d2", &["-g", "-gdwarf-2", "-gstrict-dwarf"]);
}

#[test]
fn compressed_debug_sections_are_read() {
    let Some(b) = build("z", &["-g", "-gz=zlib"]) else { return };
    let btf = converted(&b);
    assert_eq!(btf.offset_of(btf.lookup("struct outer").unwrap(), "link.prev").unwrap(), {
        let o = expectations(&b.so, "lt_offsets");
        o.iter().find(|(p, _)| p == "outer.link.prev").unwrap().1
    });
}

#[test]
fn identity_symbols_and_banner_of_a_built_object() {
    let Some(b) = build("id", &["-g"]) else { return };
    let vm = Vmlinux::open(&b.so).unwrap();
    let id = vm.build_id().expect("built with --build-id");
    assert_eq!(id.len(), 40, "{id}");
    assert!(vm.has_dwarf());
    assert_eq!(vm.banner(), None);
    let syms = vm.symbols().unwrap();
    let find = |n: &str| syms.iter().find(|s| s.2 == n).unwrap_or_else(|| panic!("no {n}"));
    assert_eq!(find("g_outer").1, 'B');
    assert_eq!(find("s_bits").1, 'b');
    assert_eq!(find("g_table").1, 'R');
    assert_eq!(find("g_color").1, 'D');
    assert_eq!(vm.symbol("g_outer"), Some(find("g_outer").0));
    // The same build id as the dump: accepted; another: refused naming both.
    let same = VmcoreInfo::parse(format!("OSRELEASE=6.1.0\nBUILD-ID={id}\n").as_bytes());
    vm.check_against(&same, &|_, _| None).unwrap();
    let other = VmcoreInfo::parse(b"OSRELEASE=6.1.0\nBUILD-ID=00112233445566778899aabbccddeeff00112233\n");
    let e = vm.check_against(&other, &|_, _| None).unwrap_err();
    assert!(matches!(e.kind, DwarfErrorKind::WrongKernel { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&id) && msg.contains("00112233445566778899aabbccddeeff00112233"), "{msg}");
    assert!(msg.contains(&b.so.display().to_string()), "{msg}");
}

#[test]
fn bad_files_give_typed_errors_naming_the_file() {
    let dir = scratch("bad");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not an ELF file at all\n").unwrap();
    let e = Vmlinux::open(&text).unwrap_err();
    assert!(matches!(e.kind, DwarfErrorKind::NotElf(_)), "{e}");
    assert!(e.to_string().contains("notes.txt"), "{e}");
    let e = Vmlinux::open(dir.join("missing")).unwrap_err();
    assert!(matches!(e.kind, DwarfErrorKind::Io(_)), "{e}");
    let empty = dir.join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(Vmlinux::open(&empty).unwrap_err().kind, DwarfErrorKind::NotElf(_)));
    let _ = std::fs::remove_dir_all(&dir);

    // An ELF file without DWARF.
    let Some(b) = build("nodwarf", &["-g0"]) else { return };
    let vm = Vmlinux::open(&b.so).unwrap();
    assert!(!vm.has_dwarf());
    let e = vm.to_btf().unwrap_err();
    assert!(matches!(e.kind, DwarfErrorKind::NoDwarf), "{e}");
    assert!(e.to_string().contains("t.so"), "{e}");

    // Truncated files and damaged DWARF: errors or (for harmless damage) results, no panic.
    let Some(b) = build("trunc", &["-g"]) else { return };
    let data = std::fs::read(&b.so).unwrap();
    let (info_off, info_len) = {
        let f = object::File::parse(&*data).unwrap();
        f.section_by_name(".debug_info").unwrap().file_range().unwrap()
    };
    let cut = b.dir.join("cut.so");
    for len in [data.len() / 2, info_off as usize + 16, 64] {
        std::fs::write(&cut, &data[..len]).unwrap();
        if let Ok(vm) = Vmlinux::open(&cut) {
            let r = vm.to_btf();
            let e = r.expect_err("a truncated file does not convert");
            assert!(e.to_string().contains("cut.so"), "{e}");
        }
    }
    // A section header that claims more bytes than the file has.
    let mut grown = data.clone();
    {
        let f = object::File::parse(&*data).unwrap();
        let idx = f.section_by_name(".debug_info").unwrap().index().0;
        let shoff = u64::from_le_bytes(data[0x28..0x30].try_into().unwrap()) as usize;
        let size_at = shoff + idx * 64 + 0x20;
        grown[size_at..size_at + 8].copy_from_slice(&(info_len + 0x10_0000).to_le_bytes());
    }
    std::fs::write(&cut, &grown).unwrap();
    let e = Vmlinux::open(&cut).and_then(|vm| vm.to_btf()).unwrap_err();
    assert!(matches!(e.kind, DwarfErrorKind::Section { .. } | DwarfErrorKind::NotElf(_)), "{e}");
    assert!(e.to_string().contains("cut.so"), "{e}");
    // Random damage to the DWARF sections (a fixed seed): an error naming the file, or a
    // result; never a panic (overflow checks are on in test builds).
    let ranges: Vec<(u64, u64)> = {
        let f = object::File::parse(&*data).unwrap();
        [".debug_info", ".debug_abbrev", ".debug_str", ".debug_line", ".debug_str_offsets", ".debug_addr"]
            .iter()
            .filter_map(|n| f.section_by_name(n)?.file_range())
            .filter(|r| r.1 > 0)
            .collect()
    };
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut failed, mut converted) = (0, 0);
    for _ in 0..300 {
        let mut bad = data.clone();
        for _ in 0..1 + next() % 4 {
            let (off, len) = ranges[(next() % ranges.len() as u64) as usize];
            let at = (off + next() % len) as usize;
            bad[at] = match next() % 4 {
                0 => 0xff,
                1 => 0,
                2 => bad[at] ^ (1 << (next() % 8)),
                _ => next() as u8,
            };
        }
        std::fs::write(&cut, &bad).unwrap();
        match Vmlinux::open(&cut).and_then(|vm| vm.to_btf()) {
            Ok((blob, _)) => {
                Btf::parse(blob).expect("what converts, loads");
                converted += 1;
            }
            Err(e) => {
                assert!(e.to_string().contains("cut.so"), "{e}");
                failed += 1;
            }
        }
    }
    eprintln!("damaged DWARF: {failed} refused, {converted} converted");
    assert!(failed > 10, "{failed} refused");
}

#[test]
fn system_map_parsing_and_relocation() {
    let p = Path::new("System.map-test");
    let text = b"0000000000000000 D __per_cpu_start\n0000000000001000 D fixed_percpu_data\n\
000000005a2b3c4d A __crc_printk\n\
ffffffff81000000 T _text\nffffffff81000000 T _stext\nffffffff81001000 t helper\n\
ffffffff82000000 D linux_banner\n\nffffffff82001000 B jiffies [mod]\n";
    let entries = sysmap::parse(text, p).unwrap();
    assert_eq!(entries.len(), 8);
    assert_eq!(entries[3], (0xffffffff81000000, 'T', "_text".to_string()));
    let moved = sysmap::relocate(entries.clone(), 0x760_0000);
    assert_eq!(moved.len(), 7, "the absolute CRC is no address");
    assert!(moved.contains(&(0x1000, 'D', "fixed_percpu_data".into())), "per-CPU offsets stay");
    assert!(moved.contains(&(0xffffffff88600000, 'T', "_stext".into())));
    let syms = Symbols::from_entries(moved);
    assert_eq!(syms.scheme, AddressScheme::AbsolutePercpu);
    assert_eq!(syms.address_of("helper"), Some(0xffffffff88601000));
    assert_eq!(syms.lookup(0xffffffff88601010).unwrap().format(0xffffffff88601010), "helper+0x10/0xfff000");
    assert!(syms.lookup(0x1000).is_none(), "per-CPU offsets name nothing");
    // KASLR from KERNELOFFSET, checked with _stext; a banner must be where the map says.
    let info = VmcoreInfo::parse(b"OSRELEASE=6.1.0-50-amd64\nSYMBOL(_stext)=ffffffff88600000\nKERNELOFFSET=7600000\n");
    let banner =
        |a: u64, l: usize| (a == 0xffffffff89600000).then(|| b"Linux version 6.1.0-50-amd64 (x)"[..l].to_vec());
    assert_eq!(sysmap::check(&entries, &info, &banner), Ok(0x760_0000));
    let elsewhere = |_: u64, l: usize| Some(vec![0u8; l]);
    assert!(sysmap::check(&entries, &info, &elsewhere).is_err());
    let wrong = VmcoreInfo::parse(b"SYMBOL(_stext)=ffffffff88600000\nKERNELOFFSET=7400000\n");
    let (ours, theirs) = sysmap::check(&entries, &wrong, &banner).unwrap_err();
    assert!(ours.contains("0xffffffff88400000") && theirs.contains("0xffffffff88600000"), "{ours} / {theirs}");
    // Without KERNELOFFSET the shift comes from _stext.
    let no_off = VmcoreInfo::parse(b"SYMBOL(_stext)=ffffffff88600000\n");
    assert_eq!(sysmap::kaslr_offset(Some(0xffffffff81000000), &no_off), Ok(0x760_0000));
    // Malformed lines are named by number.
    for bad in [&b"ffffffff81000000 T\n"[..], b"zz T x\n", b"ffffffff81000000 TT x\n", b""] {
        let e = sysmap::parse(bad, p).unwrap_err();
        assert!(e.to_string().starts_with("System.map-test"), "{e}");
    }
    assert_eq!(sysmap::parse(b"\nffffffff81000000 T a\nnope\n", p).unwrap_err().line, 3);
}
