import django_filters

from .models import Intent, Status

OBJECTIVES = ["Performance_Maximization", "Cost_Minimization", "Latency_Minimization", "Energy_Efficiency",
              "Balanced_Optimization"]


class IntentFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Status.choices)
    objective = django_filters.ChoiceFilter(choices=[(o, o) for o in OBJECTIVES])
    name = django_filters.CharFilter(lookup_expr="icontains", max_length=63)

    class Meta:
        model = Intent
        fields = ["status", "objective", "name"]
