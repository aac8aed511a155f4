//! Placeholder until the syzkaller title rules land.
use lockscope_facts::Frame;
pub enum TitleKind {
    SoftLockup,
    RcuStall,
    HungTask,
    TaskCantDie,
    HardLockup,
}
pub fn guilty_frame(_kind: TitleKind, stack: &[Frame]) -> Option<String> {
    stack
        .iter()
        .find(|f| f.reliable)
        .map(|f| f.function.clone())
}
pub fn lockup_title(kind: TitleKind, stack: &[Frame]) -> String {
    let head = match kind {
        TitleKind::SoftLockup => "BUG: soft lockup",
        TitleKind::RcuStall => "INFO: rcu detected stall",
        TitleKind::HungTask => "INFO: task hung",
        TitleKind::TaskCantDie => "INFO: task can't die",
        TitleKind::HardLockup => "BUG: hard lockup",
    };
    match guilty_frame(kind, stack) {
        Some(f) => format!("{head} in {f}"),
        None => head.to_string(),
    }
}
