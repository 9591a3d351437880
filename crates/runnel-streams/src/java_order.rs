//! The orders in which Java's collections hand back what Kafka Streams'
//! `TopologyDescription` holds, so `Topology::describe()` prints the same
//! text: a node's neighbours come from `TreeSet`s whose comparator reads
//! sub-tree sizes that keep growing while the sets are filled, and a
//! processor's stores from a `HashSet` of names. Pure functions, tested
//! against orders Kafka Streams printed.

use std::cmp::Ordering;

/// Java's `String.hashCode` (over UTF-16 code units).
pub(crate) fn string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |hash, unit| hash.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

/// The order in which a `java.util.HashSet` (or `HashMap`) made with the
/// default capacity iterates `names` added in this order: by bucket (the
/// hash's high half folded into its low half, masked by the table size,
/// which doubles past three quarters full), then by arrival within a
/// bucket. Returns indexes into `names`.
pub(crate) fn hash_order<S: AsRef<str>>(names: &[S]) -> Vec<usize> {
    let mut capacity = 16usize;
    while names.len() > capacity / 4 * 3 {
        capacity *= 2;
    }
    let bucket = |name: &str| {
        let hash = string_hash(name) as u32;
        (hash ^ (hash >> 16)) as usize & (capacity - 1)
    };
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by_key(|&i| bucket(names[i].as_ref()));
    order
}

/// A `java.util.TreeSet` of item numbers: a red-black tree filled as
/// `java.util.TreeMap` fills one. The comparator is asked only along the
/// insertion path, at insertion time, so with a comparator whose answers
/// change between insertions the in-order sequence is Java's, not a sort.
#[derive(Default)]
pub(crate) struct TreeSet {
    nodes: Vec<TreeNode>,
    root: Option<usize>,
}

struct TreeNode {
    item: usize,
    left: Option<usize>,
    right: Option<usize>,
    parent: Option<usize>,
    red: bool,
}

impl TreeSet {
    /// Adds `item` unless `compare` finds it equal to one on its path.
    pub fn insert(&mut self, item: usize, compare: impl Fn(usize, usize) -> Ordering) {
        let Some(mut at) = self.root else {
            self.nodes.push(TreeNode { item, left: None, right: None, parent: None, red: false });
            self.root = Some(0);
            return;
        };
        let (parent, goes_left) = loop {
            let (next, left) = match compare(item, self.nodes[at].item) {
                Ordering::Less => (self.nodes[at].left, true),
                Ordering::Greater => (self.nodes[at].right, false),
                Ordering::Equal => return,
            };
            match next {
                Some(next) => at = next,
                None => break (at, left),
            }
        };
        let new = self.nodes.len();
        self.nodes.push(TreeNode { item, left: None, right: None, parent: Some(parent), red: true });
        if goes_left {
            self.nodes[parent].left = Some(new);
        } else {
            self.nodes[parent].right = Some(new);
        }
        self.rebalance(new);
    }

    /// The items in order.
    pub fn items(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = Vec::new();
        let mut at = self.root;
        while at.is_some() || !stack.is_empty() {
            while let Some(node) = at {
                stack.push(node);
                at = self.nodes[node].left;
            }
            let node = stack.pop().expect("the loop runs while the stack has nodes");
            out.push(self.nodes[node].item);
            at = self.nodes[node].right;
        }
        out
    }

    fn red(&self, node: Option<usize>) -> bool {
        node.is_some_and(|n| self.nodes[n].red)
    }

    fn parent(&self, node: usize) -> Option<usize> {
        self.nodes[node].parent
    }

    /// Restores the red-black rules after an insertion, recolouring and
    /// rotating as `TreeMap.fixAfterInsertion` does.
    fn rebalance(&mut self, mut x: usize) {
        while Some(x) != self.root && self.red(self.parent(x)) {
            let parent = self.parent(x).expect("a red node has a parent");
            let Some(grand) = self.parent(parent) else { break };
            let parent_is_left = self.nodes[grand].left == Some(parent);
            let uncle = if parent_is_left { self.nodes[grand].right } else { self.nodes[grand].left };
            if self.red(uncle) {
                self.nodes[parent].red = false;
                self.nodes[uncle.expect("a red uncle exists")].red = false;
                self.nodes[grand].red = true;
                x = grand;
                continue;
            }
            let inner = if parent_is_left { self.nodes[parent].right == Some(x) } else { self.nodes[parent].left == Some(x) };
            if inner {
                x = parent;
                if parent_is_left {
                    self.rotate_left(x);
                } else {
                    self.rotate_right(x);
                }
            }
            let parent = self.parent(x).expect("rotations keep a parent");
            let grand = self.parent(parent).expect("rotations keep a grandparent");
            self.nodes[parent].red = false;
            self.nodes[grand].red = true;
            if parent_is_left {
                self.rotate_right(grand);
            } else {
                self.rotate_left(grand);
            }
        }
        let root = self.root.expect("the tree has a root");
        self.nodes[root].red = false;
    }

    fn replace_child(&mut self, parent: Option<usize>, old: usize, new: usize) {
        match parent {
            None => self.root = Some(new),
            Some(p) if self.nodes[p].left == Some(old) => self.nodes[p].left = Some(new),
            Some(p) => self.nodes[p].right = Some(new),
        }
    }

    fn rotate_left(&mut self, node: usize) {
        let right = self.nodes[node].right.expect("a left rotation has a right child");
        self.nodes[node].right = self.nodes[right].left;
        if let Some(moved) = self.nodes[right].left {
            self.nodes[moved].parent = Some(node);
        }
        let parent = self.nodes[node].parent;
        self.nodes[right].parent = parent;
        self.replace_child(parent, node, right);
        self.nodes[right].left = Some(node);
        self.nodes[node].parent = Some(right);
    }

    fn rotate_right(&mut self, node: usize) {
        let left = self.nodes[node].left.expect("a right rotation has a left child");
        self.nodes[node].left = self.nodes[left].right;
        if let Some(moved) = self.nodes[left].right {
            self.nodes[moved].parent = Some(node);
        }
        let parent = self.nodes[node].parent;
        self.nodes[left].parent = parent;
        self.replace_child(parent, node, left);
        self.nodes[left].right = Some(node);
        self.nodes[node].parent = Some(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hashes_are_java_s() {
        assert_eq!(string_hash(""), 0);
        assert_eq!(string_hash("a"), 97);
        assert_eq!(string_hash("hello"), 99_162_322);
        assert_eq!(
            string_hash("KSTREAM-SOURCE-0000000000"),
            "KSTREAM-SOURCE-0000000000".bytes().fold(0i32, |h, b| h.wrapping_mul(31).wrapping_add(i32::from(b)))
        );
    }

    #[test]
    fn a_hash_set_of_store_names_iterates_as_java_s_does() {
        // Kafka Streams 4.4 printed these stores of one processor in this
        // order.
        let names = ["KSTREAM-OUTEROTHER-0000000009-store", "KSTREAM-OUTERSHARED-0000000008-store"];
        let order: Vec<&str> = hash_order(&names).into_iter().map(|i| names[i]).collect();
        assert_eq!(order, ["KSTREAM-OUTERSHARED-0000000008-store", "KSTREAM-OUTEROTHER-0000000009-store"]);
    }

    #[test]
    fn a_consistent_comparator_sorts_and_equal_items_are_kept_once() {
        let mut set = TreeSet::default();
        for item in [5, 3, 8, 1, 4, 7, 9, 2, 6, 3, 0] {
            set.insert(item, |a, b| a.cmp(&b));
        }
        assert_eq!(set.items(), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn answers_that_change_between_insertions_leave_java_s_order() {
        // 1 goes before 0 while 0 is lighter; then 0 grows heaviest, which
        // would sort it first, but 1 stays where it was put and 2, compared
        // with the root 0 only, goes after it.
        let weights = std::cell::RefCell::new(vec![1, 5, 1]);
        let mut set = TreeSet::default();
        let compare = |a: usize, b: usize| weights.borrow()[b].cmp(&weights.borrow()[a]).then(a.cmp(&b));
        set.insert(0, compare);
        set.insert(1, compare);
        weights.borrow_mut()[0] = 9;
        set.insert(2, compare);
        assert_eq!(set.items(), [1, 0, 2]);
    }
}
