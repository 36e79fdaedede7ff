package rules

import (
	"errors"
	"testing"

	pb "github.com/tollgate/tollgate/proto"
)

func TestRulesRefuseWithErrInvalid(t *testing.T) {
	for name, err := range map[string]error{
		"short key value":    KeyValue("abcde"),
		"quota above max":    Quota(&pb.QuotaSettings{Limit: 1e15, Period: "DAY"}),
		"remaining above":    Remaining(1e15),
		"burst without rate": Throttle("throttle", 0, 5),
		"plan without name":  Plan(&pb.UsagePlan{Id: "p"}),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want an error matching ErrInvalid", name, err)
		}
	}
	for name, err := range map[string]error{
		"key value":  KeyValue("abcdefghij0123456789"),
		"quota":      Quota(&pb.QuotaSettings{Limit: 1e12, Period: "MONTH", Offset: 27}),
		"remaining":  Remaining(0),
		"throttle":   Throttle("throttle", 0, 0),
		"rate alone": Throttle("throttle", 10, 0),
		"account":    Throttle("account throttle", DefaultAccountRate, DefaultAccountBurst),
		"stage name": StageName("prod_v-2"),
	} {
		if err != nil {
			t.Errorf("%s: %v, want accepted", name, err)
		}
	}
}
