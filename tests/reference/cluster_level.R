# Reference values for crtstats.cluster_level (tests/test_cluster_level.py).
#
# Data: data/gee_admissions.csv (follow-up service users of the example trial) and
# data/cluster_level_service_use.csv (the example trial's follow-up team counts with
# exposure n_users and the team's pre-period rates).
#
# Unweighted analyses: t.test(var.equal = TRUE) on cluster summaries (intervention
# first, so estimates are intervention minus control). Size-weighted: lm(weights = n).
# Two-stage residual method (Hayes and Moulton 2017, ch. 10): stage 1 glm without the
# arm ignoring clustering; stage 2 t-test of (O - E)/n and of log(O/E), with
# k - 2 - q df (q cluster-level covariate columns).
#
# Run from the repository root: Rscript tests/reference/cluster_level.R

suppressPackageStartupMessages(library(jsonlite))

adm <- read.csv("tests/reference/data/gee_admissions.csv", stringsAsFactors = FALSE)
su <- read.csv("tests/reference/data/cluster_level_service_use.csv", stringsAsFactors = FALSE)

ttest <- function(v, arm, df = NULL) {
  tt <- t.test(v[arm == "intervention"], v[arm == "control"], var.equal = TRUE)
  est <- unname(tt$estimate[1] - tt$estimate[2])
  se <- unname(tt$stderr)
  if (is.null(df)) df <- unname(tt$parameter)
  q <- qt(0.975, df)
  list(estimate = est, std_error = se, df = df,
       pvalue = 2 * pt(-abs(est / se), df),
       conf_int = c(est - q * se, est + q * se),
       t_test_pvalue = tt$p.value, t_test_conf_int = as.vector(tt$conf.int))
}

wtest <- function(v, arm, w) {
  fit <- lm(v ~ I(arm == "intervention"), weights = w)
  s <- summary(fit)$coefficients
  list(estimate = s[2, 1], std_error = s[2, 2], df = fit$df.residual,
       pvalue = s[2, 4], conf_int = unname(confint(fit)[2, ]))
}

team <- function(d, y, size = NULL) {
  n <- if (is.null(size)) tapply(rep(1, nrow(d)), d$team_id, sum) else tapply(d[[size]], d$team_id, sum)
  O <- tapply(d[[y]], d$team_id, sum)
  arm <- tapply(d$arm, d$team_id, function(a) a[1])
  data.frame(team = names(O), O = as.vector(O), n = as.vector(n), arm = as.vector(arm))
}

out <- list()

# proportions: follow-up admission per service user
tp <- team(adm, "admitted")
out$prop_unweighted <- list(difference = ttest(tp$O / tp$n, tp$arm),
                            log_ratio = ttest(log(tp$O / tp$n), tp$arm))
out$prop_weighted <- list(difference = wtest(tp$O / tp$n, tp$arm, tp$n),
                          log_ratio = wtest(log(tp$O / tp$n), tp$arm, tp$n))
tight <- glm.control(epsilon = 1e-14, maxit = 100)  # stage 1 run to convergence
stage1 <- glm(admitted ~ factor(stratum) + pre_prop, family = binomial, data = adm,
              control = tight)
adm$e <- fitted(stage1)
tp$E <- as.vector(tapply(adm$e, adm$team_id, sum))
q <- 7 + 1  # seven stratum contrasts and pre_prop, all constant within teams
out$prop_adjusted <- list(difference = ttest((tp$O - tp$E) / tp$n, tp$arm, df = 25 - 2 - q),
                          log_ratio = ttest(log(tp$O / tp$E), tp$arm, df = 25 - 2 - q))

# means: age (unadjusted), and adjusted for sex (an individual-level covariate, q = 0)
ta <- team(adm, "age")
out$mean_unweighted <- list(difference = ttest(ta$O / ta$n, ta$arm))
stage1 <- lm(age ~ sex, data = adm)
adm$e <- fitted(stage1)
ta$E <- as.vector(tapply(adm$e, adm$team_id, sum))
out$mean_adjusted_sex <- list(difference = ttest((ta$O - ta$E) / ta$n, ta$arm, df = 25 - 2))

# rates with exposure: team admissions per service user
tr <- team(su, "admissions", size = "n_users")
out$rate_unweighted <- list(difference = ttest(tr$O / tr$n, tr$arm),
                            log_ratio = ttest(log(tr$O / tr$n), tr$arm))
out$rate_weighted <- list(difference = wtest(tr$O / tr$n, tr$arm, tr$n),
                          log_ratio = wtest(log(tr$O / tr$n), tr$arm, tr$n))
stage1 <- glm(admissions ~ factor(stratum) + log(pre_admissions_rate), family = poisson,
              offset = log(n_users), data = su, control = tight)
tr$E <- as.vector(tapply(fitted(stage1), su$team_id, sum))
out$rate_adjusted <- list(difference = ttest((tr$O - tr$E) / tr$n, tr$arm, df = 25 - 2 - q),
                          log_ratio = ttest(log(tr$O / tr$E), tr$arm, df = 25 - 2 - q))

# a rate with a zero count: 0.5 added to the zero total for the log ratio only
tz <- team(su, "readmissions", size = "n_users")
Oz <- ifelse(tz$O == 0, 0.5, tz$O)
out$readmission_rate <- list(difference = ttest(tz$O / tz$n, tz$arm),
                             log_ratio = ttest(log(Oz / tz$n), tz$arm),
                             zero_teams = tz$team[tz$O == 0])

# exact stratified randomisation test (used by tests/test_permutation.py): every
# allocation that keeps the number of intervention teams in each stratum, statistic the
# difference of unweighted mean team proportions, p = share with |T*| >= |T|
strat <- tapply(adm$stratum, adm$team_id, function(s) s[1])
p_team <- tp$O / tp$n
treated <- tp$arm == "intervention"
blocks <- split(seq_along(strat), strat)
choices <- lapply(blocks, function(b) combn(b, sum(treated[b]), simplify = FALSE))
grid <- expand.grid(lapply(choices, seq_along))
stat <- function(tr) mean(p_team[tr]) - mean(p_team[!tr])
null <- apply(grid, 1, function(row) {
  tr <- rep(FALSE, length(p_team))
  for (j in seq_along(choices)) tr[choices[[j]][[row[j]]]] <- TRUE
  stat(tr)
})
obs <- stat(treated)
out$permutation_stratified <- list(observed = obs, n_allocations = nrow(grid),
                                   pvalue = mean(abs(null) >= abs(obs) * (1 - 1e-12)))
# the same enumeration for the pooled t statistic and for the log team proportions
enumerate_stat <- function(f) {
  apply(grid, 1, function(row) {
    tr <- rep(FALSE, length(p_team))
    for (j in seq_along(choices)) tr[choices[[j]][[row[j]]]] <- TRUE
    f(tr)
  })
}
tstat <- function(tr) unname(t.test(p_team[tr], p_team[!tr], var.equal = TRUE)$statistic)
null_t <- enumerate_stat(tstat)
obs_t <- tstat(treated)
out$permutation_stratified_t <- list(observed = obs_t,
                                     pvalue = mean(abs(null_t) >= abs(obs_t) * (1 - 1e-12)))
lstat <- function(tr) mean(log(p_team[tr])) - mean(log(p_team[!tr]))
null_l <- enumerate_stat(lstat)
obs_l <- lstat(treated)
out$permutation_stratified_log_ratio <- list(
  observed = obs_l, pvalue = mean(abs(null_l) >= abs(obs_l) * (1 - 1e-12)))

# team-level negative binomial rate models of analyse_admissions (crtstats'
# negative_binomial_rate): MASS::glm.nb with offset log(n_users), adjusted for stratum
# and the log pre-period rate (0.5 added to a zero pre-period count)
suppressPackageStartupMessages(library(MASS))
su$arm <- factor(su$arm, levels = c("control", "intervention"))
for (count in c("admissions", "bed_days", "readmissions")) {
  pre_rate <- su[[paste0("pre_", count, "_rate")]]
  pre_count <- pre_rate * su$n_users_pre
  su$log_pre <- log(ifelse(pre_count == 0, 0.5 / su$n_users_pre, pre_rate))
  fit <- glm.nb(as.formula(paste(count, "~ arm + stratum + log_pre + offset(log(n_users))")),
                data = su, control = glm.control(epsilon = 1e-12, maxit = 100))
  out[[paste0("nb_", count)]] <- list(
    coef = unname(coef(fit)), se = unname(sqrt(diag(vcov(fit)))), theta = fit$theta,
    terms = names(coef(fit)))
}

# the primary GLMM of analyse_admissions: random-intercept logistic model of follow-up
# admission, adjusted for stratum and the team's pre-period proportion (Laplace). On the
# example data the team variance is estimated as zero (a singular fit).
suppressPackageStartupMessages(library(lme4))
adm$arm <- factor(adm$arm, levels = c("control", "intervention"))
glmm_fit <- glmer(admitted ~ arm + stratum + pre_prop + (1 | team_id), data = adm,
                  family = binomial, control = glmerControl(optimizer = "bobyqa"))
out$glmm_admitted <- list(coef = unname(fixef(glmm_fit)),
                          se = unname(sqrt(diag(as.matrix(vcov(glmm_fit))))),
                          team_sd = attr(VarCorr(glmm_fit)$team_id, "stddev")[[1]],
                          singular = isSingular(glmm_fit))

write_json(out, "tests/reference/cluster_level.json", digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
