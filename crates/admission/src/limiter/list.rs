//! Intrusive doubly-linked lists over a slab: O(1) push, pop at either end,
//! and removal from the middle (a cancelled or timed-out waiter).

use slab::Slab;

/// Links of one node in one list.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Link {
    prev: Option<usize>,
    next: Option<usize>,
}

impl Link {
    /// The key after this node, if any.
    #[cfg(test)]
    pub(crate) fn next(&self) -> Option<usize> {
        self.next
    }
}

/// A list of slab keys, oldest at the head.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct List {
    head: Option<usize>,
    tail: Option<usize>,
    len: usize,
}

/// A node type that sits in two lists at once: its class's and the global one.
pub(crate) trait Linked {
    fn link(&mut self, which: Which) -> &mut Link;
}

/// Which of a node's two lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Class,
    All,
}

impl List {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn head(&self) -> Option<usize> {
        self.head
    }

    pub(crate) fn tail(&self) -> Option<usize> {
        self.tail
    }

    pub(crate) fn push_back<N: Linked>(&mut self, nodes: &mut Slab<N>, key: usize, which: Which) {
        let old_tail = self.tail;
        *nodes[key].link(which) = Link {
            prev: old_tail,
            next: None,
        };
        match old_tail {
            Some(t) => nodes[t].link(which).next = Some(key),
            None => self.head = Some(key),
        }
        self.tail = Some(key);
        self.len += 1;
    }

    pub(crate) fn remove<N: Linked>(&mut self, nodes: &mut Slab<N>, key: usize, which: Which) {
        let Link { prev, next } = std::mem::take(nodes[key].link(which));
        match prev {
            Some(p) => nodes[p].link(which).next = next,
            None => self.head = next,
        }
        match next {
            Some(n) => nodes[n].link(which).prev = prev,
            None => self.tail = prev,
        }
        self.len -= 1;
    }
}
