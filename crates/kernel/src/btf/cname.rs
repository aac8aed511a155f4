//! Types spelt as C declares them: `unsigned int`, `struct list_head *`, `char [16]`,
//! `const char *`, `char *const`, `int (*)[4]`, `void (*)(struct rq *, int)`. The declarator is
//! built inside out (pointer stars before, array and parameter lists after, parentheses where a
//! pointer meets an array or function), the way C reads it. Type tags are left out.

use super::query::{BUDGET, MAX_DEPTH};
use super::{Btf, Kind, TypeError, TypeId};

impl Btf<'_> {
    /// The C spelling of a type, as a cast would write it. A FUNC is spelt as its declaration
    /// (`int foo(int)`), a VAR as `type name`. Anonymous structs print as `struct <anonymous>`.
    pub fn type_name(&self, id: TypeId) -> Result<String, TypeError> {
        let mut budget = BUDGET;
        self.declare(id, String::new(), 0, &mut budget)
    }

    /// `id` declared around the declarator `inner` (what is already known to be built from it).
    fn declare(&self, id: TypeId, inner: String, depth: usize, budget: &mut usize) -> Result<String, TypeError> {
        *budget = budget.checked_sub(1).ok_or(TypeError::TooDeep(id))?;
        if depth > MAX_DEPTH {
            return Err(TypeError::TooDeep(id));
        }
        if id == TypeId::VOID {
            return Ok(join("void".into(), &inner));
        }
        let t = self.ty(id)?;
        let named = |tag: &str| {
            let name = if t.name().is_empty() { "<anonymous>" } else { t.name() };
            if tag.is_empty() { name.to_string() } else { format!("{tag} {name}") }
        };
        let target = t.target().unwrap_or(TypeId::VOID);
        match t.kind() {
            Kind::Int | Kind::Float | Kind::Typedef => Ok(join(named(""), &inner)),
            Kind::Struct => Ok(join(named("struct"), &inner)),
            Kind::Union => Ok(join(named("union"), &inner)),
            Kind::Enum | Kind::Enum64 => Ok(join(named("enum"), &inner)),
            Kind::Fwd => Ok(join(named(if t.fwd_is_union() { "union" } else { "struct" }), &inner)),
            Kind::Datasec => Ok(join(named("SEC"), &inner)),
            Kind::Ptr => {
                let pointee = self.kind_of(target)?;
                let decl = if matches!(pointee, Some(Kind::Array | Kind::FuncProto)) {
                    format!("(*{inner})")
                } else {
                    format!("*{inner}")
                };
                self.declare(target, decl, depth + 1, budget)
            }
            Kind::Const | Kind::Volatile | Kind::Restrict => {
                let q = match t.kind() {
                    Kind::Const => "const",
                    Kind::Volatile => "volatile",
                    _ => "restrict",
                };
                if self.kind_of(target)? == Some(Kind::Ptr) {
                    // The pointer itself is qualified: `char *const p`.
                    self.declare(target, join(q.into(), &inner), depth + 1, budget)
                } else {
                    Ok(format!("{q} {}", self.declare(target, inner, depth + 1, budget)?))
                }
            }
            Kind::TypeTag | Kind::DeclTag => self.declare(target, inner, depth + 1, budget),
            Kind::Array => {
                let a = t.array().ok_or(TypeError::NoSuchType(id))?;
                self.declare(a.elem, format!("{inner}[{}]", a.nelems), depth + 1, budget)
            }
            Kind::FuncProto => {
                let mut params = Vec::with_capacity(t.vlen().min(64) as usize);
                let n = t.params().len();
                for (i, p) in t.params().enumerate() {
                    if i + 1 == n && p.ty == TypeId::VOID && p.name.is_empty() {
                        params.push("...".to_string());
                    } else {
                        params.push(self.declare(p.ty, String::new(), depth + 1, budget)?);
                    }
                }
                let list = if params.is_empty() { "void".to_string() } else { params.join(", ") };
                self.declare(target, format!("{inner}({list})"), depth + 1, budget)
            }
            Kind::Func | Kind::Var => self.declare(target, join(t.name().into(), &inner), depth + 1, budget),
        }
    }

    /// Kind of `id`, None for void.
    fn kind_of(&self, id: TypeId) -> Result<Option<Kind>, TypeError> {
        if id == TypeId::VOID { Ok(None) } else { Ok(Some(self.ty(id)?.kind())) }
    }
}

/// `base` followed by a declarator, separated by a space when there is one.
fn join(mut base: String, inner: &str) -> String {
    if !inner.is_empty() {
        base.push(' ');
        base.push_str(inner);
    }
    base
}
