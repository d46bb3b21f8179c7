//! Connected components of the auto-merged pairs: records linked through a chain of
//! auto-merges belong to one person.

/// Disjoint sets over record indices, with path halving and union by size.
#[derive(Debug)]
pub(crate) struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    pub(crate) fn new(len: usize) -> Self {
        Self { parent: (0..len).collect(), size: vec![1; len] }
    }

    pub(crate) fn find(&mut self, mut element: usize) -> usize {
        while self.parent[element] != element {
            self.parent[element] = self.parent[self.parent[element]];
            element = self.parent[element];
        }
        element
    }

    pub(crate) fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }

    /// The sets of more than one element, each sorted, in order of their first element.
    pub(crate) fn groups(&mut self) -> Vec<Vec<usize>> {
        let len = self.parent.len();
        let mut slot_of_root: Vec<Option<usize>> = vec![None; len];
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for element in 0..len {
            let root = self.find(element);
            if self.size[root] < 2 {
                continue;
            }
            let slot = *slot_of_root[root].get_or_insert_with(|| {
                groups.push(Vec::with_capacity(self.size[root]));
                groups.len() - 1
            });
            groups[slot].push(element);
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_become_one_group() {
        let mut sets = UnionFind::new(6);
        sets.union(0, 3);
        sets.union(3, 5);
        sets.union(1, 2);
        assert_eq!(sets.groups(), vec![vec![0, 3, 5], vec![1, 2]]);
    }
}
