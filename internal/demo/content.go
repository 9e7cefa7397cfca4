package demo

import (
	"strconv"
	"strings"
	"time"
)

// NewsItem is one article on the demo site. ID is the decimal path segment of
// /news/{id}; Published is the article's publication instant (UTC).
type NewsItem struct {
	ID        int       `json:"id"`
	Title     string    `json:"title"`
	Summary   string    `json:"summary"`
	Body      []string  `json:"body"` // paragraphs, plain text
	Author    string    `json:"author"`
	Published time.Time `json:"published"`
}

// Event is one campaign event. Starts is the local start instant; Place is a
// free-text venue.
type Event struct {
	ID          int       `json:"id"`
	Title       string    `json:"title"`
	Place       string    `json:"place"`
	Starts      time.Time `json:"starts"`
	Description string    `json:"description"`
}

// content is the site's fixed, fictional corpus. It is built per Site (no
// package-level state) and never mutated after NewSite returns.
type content struct {
	news   []NewsItem // newest first
	events []Event    // soonest first
}

func newContent(party string) *content {
	d := func(y int, m time.Month, day, h, min int) time.Time {
		return time.Date(y, m, day, h, min, 0, 0, time.UTC)
	}
	r := strings.NewReplacer("{party}", party)
	c := &content{
		news: []NewsItem{
			{ID: 6, Title: "Ferry fares frozen for another year", Author: "Press office",
				Published: d(2026, 3, 14, 9, 30),
				Summary:   "{party} councillors secured a fare freeze on the island ferries after a two-month campaign.",
				Body: []string{
					"After two months of letters, petitions and a packed public meeting, the harbour board has agreed to freeze ferry fares until next spring.",
					"Thank you to the 4,200 residents who signed. The fight for a proper winter timetable continues.",
				}},
			{ID: 5, Title: "Volunteers wanted for the spring canvass", Author: "Organising team",
				Published: d(2026, 3, 2, 18, 0),
				Summary:   "We are knocking on ten thousand doors before the council elections. Join a team near you.",
				Body: []string{
					"Canvassing is the best way to hear what people actually think. No experience needed: every new volunteer is paired with someone who has done it before.",
					"Sign up on the volunteer page and your local organiser will be in touch within a week.",
				}},
			{ID: 4, Title: "Our plan for the old fish market", Author: "Policy team",
				Published: d(2026, 2, 20, 12, 0),
				Summary:   "Affordable workshops, a covered market and a public square, not another car park.",
				Body: []string{
					"The old fish market has stood empty for six years. {party} proposes a covered market on the ground floor and low-rent workshops above.",
					"The plan is fully costed and would be paid for by the harbour development fund, not council tax.",
				}},
			{ID: 3, Title: "Questions to the council: bus route 7", Author: "Press office",
				Published: d(2026, 2, 5, 10, 15),
				Summary:   "Why was route 7 cut without consultation? We asked, and publish the answer in full.",
				Body: []string{
					"At last week's council meeting we asked why the evening service on route 7 was withdrawn. The full written answer is reproduced below.",
					"We will keep pressing for a consultation before any further cuts.",
				}},
			{ID: 2, Title: "Annual members' assembly: the results", Author: "Party secretary",
				Published: d(2026, 1, 24, 20, 0),
				Summary:   "Members elected a new executive and adopted three motions on housing, transport and the harbour.",
				Body: []string{
					"Over three hundred members took part, in person and online. Thank you to everyone who moved, seconded and debated motions.",
					"The minutes are available to members in the account area.",
				}},
			{ID: 1, Title: "Welcome to the new website", Author: "Digital team",
				Published: d(2026, 1, 10, 8, 0),
				Summary:   "A faster, more accessible site that works on any device, with or without JavaScript.",
				Body: []string{
					"We rebuilt the site to load quickly on slow connections and to work with screen readers and keyboard navigation.",
					"Tell us what you think using the volunteer form.",
				}},
		},
		events: []Event{
			{ID: 1, Title: "Harbourside public meeting", Place: "Seamen's Institute, Quay Street",
				Starts:      d(2026, 4, 9, 19, 0),
				Description: "An open meeting on the ferry timetable. Everyone welcome; step-free access."},
			{ID: 2, Title: "Spring canvass launch", Place: "Market Square",
				Starts:      d(2026, 4, 18, 10, 30),
				Description: "Meet your team, pick up leaflets and head out. Tea and training provided."},
			{ID: 3, Title: "Policy forum: housing", Place: "Online",
				Starts:      d(2026, 4, 23, 18, 30),
				Description: "Members and supporters discuss the draft housing platform."},
			{ID: 4, Title: "Beach clean and picnic", Place: "North Sands",
				Starts:      d(2026, 5, 2, 11, 0),
				Description: "Gloves and bags supplied. Bring the family."},
		},
	}
	for i := range c.news {
		n := &c.news[i]
		n.Summary = r.Replace(n.Summary)
		for j := range n.Body {
			n.Body[j] = r.Replace(n.Body[j])
		}
	}
	return c
}

// newsByID returns the article whose canonical decimal id is raw (so "06"
// and "+6" are not aliases of "6"), or false.
func (c *content) newsByID(raw string) (NewsItem, bool) {
	id, err := strconv.Atoi(raw)
	if err != nil || strconv.Itoa(id) != raw {
		return NewsItem{}, false
	}
	for _, n := range c.news {
		if n.ID == id {
			return n, true
		}
	}
	return NewsItem{}, false
}

// updated is the newest publication instant, used as the feeds' update time
// and Last-Modified.
func (c *content) updated() time.Time { return c.news[0].Published }
