// Package suggest finds the valid name nearest to a mistyped one, for the
// "did you mean" hints of the command line and the namespace spec parser.
package suggest

import "strings"

// Nearest returns the candidate closest to word by edit distance
// (case-insensitive), if one is close enough to be a plausible typo: at most
// one edit for words of up to four letters, two for longer ones, or a
// candidate that word is a prefix of. ok is false when none qualifies. Ties
// go to the earlier candidate, so callers control the order.
func Nearest(word string, candidates []string) (best string, ok bool) {
	w := strings.ToLower(word)
	if w == "" {
		return "", false
	}
	limit := 2
	if len([]rune(w)) <= 4 {
		limit = 1
	}
	bestDist := limit + 1
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if lc == w {
			continue
		}
		d := distance(w, lc)
		if d > limit && len(w) >= 3 && strings.HasPrefix(lc, w) {
			d = limit // an unambiguous abbreviation reads like a typo
		}
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	return best, bestDist <= limit
}

// distance is the Damerau–Levenshtein (optimal string alignment) distance
// between a and b: insertions, deletions, substitutions and transpositions
// of adjacent runes each cost one.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
