# Reference values for crtstats.analysis.questionnaire_effects (tests/test_questionnaire_analysis.py).
#
# Run from the project root:  Rscript tests/reference/questionnaire.R
# Writes tests/reference/questionnaire.json and the simulated data set
# tests/reference/data/questionnaire_core.csv. Packages: lme4, pbkrtest, clubSandwich,
# geepack, jsonlite.
#
# The data: a CORE-like trial of 25 teams (15 intervention, 10 control) in 8 strata, a
# CSQ-8-like questionnaire (8 items scored 1-4, total 8-32) given to about 15 service
# users per team at baseline and afresh at follow-up, with some non-response and some
# follow-up respondents who also answered at baseline (the same id: linked); a 0/1
# caseness (total at most 26). One team has no scored baseline respondent (so it is
# left out of every analysis, as the Python side does) and one team a single scored
# follow-up respondent.
#
# Fitted, at full precision and with tight control settings:
#   cross-sectional LMM  lmer(total ~ arm + stratum + team_baseline_mean + (1 | team_id))
#                        REML, KR covariance (pbkrtest::vcovAdj) and df (get_Lb_ddf)
#   linked LMM           the same plus own_baseline, on people scored at both waves
#   ANCOVA of team means lm(follow_up_mean ~ arm + stratum + team_baseline_mean),
#                        clubSandwich::coef_test(vcov = "CR2", test = "Satterthwaite")
#   randomisation stat.  arm difference of the residuals of lm(follow_up_mean ~
#                        team_baseline_mean + stratum)
#   ICC                  one-way ANOVA estimator of the follow-up totals, the exact
#                        interval of Wald (1940) solved with uniroot
#   caseness GLMM        glmer(case ~ arm + stratum + team_baseline_prop + (1 | team_id),
#                        binomial, Laplace), between-within df by hand (G - 10)
#   independence GEE     geepack::geeglm(case ~ arm, corstr = "independence"), its
#                        estimate and the Mancl-DeRouen sandwich by hand

suppressPackageStartupMessages({
  library(lme4)
  library(pbkrtest)
  library(clubSandwich)
  library(geepack)
  library(jsonlite)
})

data_path <- file.path("tests", "reference", "data", "questionnaire_core.csv")
out_path <- file.path("tests", "reference", "questionnaire.json")

set.seed(20140301)
strata_size <- c(4, 3, 3, 3, 3, 3, 3, 3)
strata_int <- c(2, 2, 2, 2, 2, 2, 2, 1)
teams <- do.call(rbind, lapply(seq_along(strata_size), function(s) {
  data.frame(stratum = sprintf("S%d", s),
             arm = c(rep("intervention", strata_int[s]),
                     rep("control", strata_size[s] - strata_int[s])))
}))
teams$team_id <- sprintf("T%02d", seq_len(nrow(teams)))
teams$u <- rnorm(nrow(teams), 0, 0.35)
teams$s_eff <- rnorm(8, 0, 0.2)[as.integer(factor(teams$stratum))]
# a change of team level between the waves (not predicted by the baseline mean)
teams$v <- rnorm(nrow(teams), 0, 0.45)

items_total <- function(z) {
  # eight items 1-4 from a person's latent satisfaction z
  it <- sapply(1:8, function(k) pmin(4, pmax(1, round(3.3 + z + rnorm(length(z), 0, 0.6)))))
  rowSums(matrix(it, ncol = 8))
}

rows <- list()
for (i in seq_len(nrow(teams))) {
  tm <- teams[i, ]
  n_base <- sample(12:18, 1)
  z_base <- tm$u + tm$s_eff + rnorm(n_base, 0, 0.45)
  base <- data.frame(team_id = tm$team_id, respondent_id = sprintf("%s-B%02d", tm$team_id,
                     seq_len(n_base)), wave = "baseline", z = z_base)
  n_fu <- sample(12:18, 1)
  n_link <- min(sample(2:6, 1), n_base)
  effect <- if (tm$arm == "intervention") 0.12 else 0
  link_ids <- base$respondent_id[seq_len(n_link)]
  z_fu <- tm$u + tm$v + tm$s_eff + effect + rnorm(n_fu, 0, 0.45)
  z_fu[seq_len(n_link)] <- 0.6 * base$z[seq_len(n_link)] + 0.4 * z_fu[seq_len(n_link)]
  fu <- data.frame(team_id = tm$team_id,
                   respondent_id = c(link_ids, sprintf("%s-F%02d", tm$team_id,
                                                       seq_len(n_fu - n_link))),
                   wave = "follow_up", z = z_fu)
  rows[[i]] <- rbind(base, fu)
}
d <- do.call(rbind, rows)
d$total <- items_total(d$z)
d$responded <- runif(nrow(d)) > 0.08
# one team without any baseline response; one team with a single follow-up response
d$responded[d$team_id == "T05" & d$wave == "baseline"] <- FALSE
t9 <- which(d$team_id == "T09" & d$wave == "follow_up")
d$responded[t9] <- FALSE
d$responded[t9[length(t9)]] <- TRUE
d$total[!d$responded] <- NA
d$case <- ifelse(is.na(d$total), NA, as.integer(d$total <= 26))
d <- merge(d, teams[, c("team_id", "arm", "stratum")], by = "team_id", sort = FALSE)
d <- d[order(d$team_id, d$wave, d$respondent_id), c("team_id", "respondent_id", "wave",
                                                     "responded", "total", "case", "arm",
                                                     "stratum")]
write.csv(d, data_path, row.names = FALSE, na = "")

# --- analysis frames -----------------------------------------------------------------
sc <- d[d$responded & !is.na(d$total), ]
base_mean <- tapply(sc$total[sc$wave == "baseline"], sc$team_id[sc$wave == "baseline"], mean)
base_prop <- tapply(sc$case[sc$wave == "baseline"], sc$team_id[sc$wave == "baseline"], mean)
fu <- sc[sc$wave == "follow_up" & sc$team_id %in% names(base_mean), ]
fu$team_baseline_mean <- as.numeric(base_mean[fu$team_id])
fu$team_baseline_prop <- as.numeric(base_prop[fu$team_id])
fu$arm <- factor(fu$arm, levels = c("control", "intervention"))
fu$stratum <- factor(fu$stratum)
bs <- sc[sc$wave == "baseline", c("team_id", "respondent_id", "total")]
names(bs)[3] <- "own_baseline"
linked <- merge(fu, bs, by = c("team_id", "respondent_id"))

tight <- lmerControl(
  optimizer = "nloptwrap",
  optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-16, xtol_rel = 1e-14,
                 ftol_rel = 1e-16, maxeval = 100000),
  calc.derivs = FALSE, check.conv.singular = "ignore"
)

lmm_out <- function(formula, data) {
  fit <- lmer(formula, data = data, REML = TRUE, control = tight)
  vadj <- as.matrix(pbkrtest::vcovAdj(fit))
  p <- length(fixef(fit))
  L <- numeric(p); L[names(fixef(fit)) == "armintervention"] <- 1
  vc <- as.data.frame(VarCorr(fit))
  list(names = names(fixef(fit)), beta = unname(fixef(fit)),
       se_kr = unname(sqrt(diag(vadj))), se_model = unname(sqrt(diag(as.matrix(vcov(fit))))),
       arm_df_kr = pbkrtest::get_Lb_ddf(fit, L),
       var_cluster = vc$vcov[vc$grp == "team_id"], var_residual = vc$vcov[vc$grp == "Residual"],
       reml_criterion = REMLcrit(fit), nobs = nobs(fit), n_clusters = unname(ngrps(fit)))
}

cross <- lmm_out(total ~ arm + stratum + team_baseline_mean + (1 | team_id), fu)
link_fit <- lmm_out(total ~ arm + stratum + own_baseline + team_baseline_mean + (1 | team_id),
                    linked)

# --- team means: ANCOVA (CR2) and the randomisation statistic --------------------------
tm <- aggregate(total ~ team_id + arm + stratum + team_baseline_mean, data = fu, FUN = mean)
names(tm)[names(tm) == "total"] <- "follow_up_mean"
tm <- tm[order(tm$team_id), ]
anc <- lm(follow_up_mean ~ arm + stratum + team_baseline_mean, data = tm)
ct <- coef_test(anc, vcov = "CR2", cluster = tm$team_id, test = "Satterthwaite")
ancova <- list(names = names(coef(anc)), beta = unname(coef(anc)), se = unname(ct$SE),
               df = unname(ct$df_Satt), p = unname(ct$p_Satt))
null_fit <- lm(follow_up_mean ~ team_baseline_mean + stratum, data = tm)
r <- residuals(null_fit)
randomisation <- list(observed = mean(r[tm$arm == "intervention"]) -
                        mean(r[tm$arm == "control"]))

# --- ICC of the follow-up totals: one-way ANOVA, exact (Wald 1940) interval -------------
anova_parts <- function(y, g) {
  g <- factor(g, levels = unique(g))
  ni <- as.vector(table(g)); k <- length(ni); N <- length(y)
  means <- as.vector(tapply(y, g, mean))
  msb <- sum(ni * (means - mean(y))^2) / (k - 1)
  msw <- sum((y - means[as.integer(g)])^2) / (N - k)
  n0 <- (N - sum(ni^2) / N) / (k - 1)
  list(ni = ni, k = k, N = N, means = means, msb = msb, msw = msw,
       rho = (msb - msw) / (msb + (n0 - 1) * msw))
}
wald_ci <- function(a, level = 0.95) {
  Fth <- function(theta) {
    w <- a$ni / (1 + a$ni * theta)
    yw <- sum(w * a$means) / sum(w)
    sum(w * (a$means - yw)^2) / (a$k - 1) / a$msw
  }
  lo_bound <- -1 / max(a$ni)
  solve_for <- function(target) {
    lo <- lo_bound + 1e-12
    if (Fth(lo) <= target) return(lo_bound)
    uniroot(function(t) Fth(t) - target, c(lo, 1e6), tol = 1e-14)$root
  }
  tail <- (1 - level) / 2
  th <- c(solve_for(qf(1 - tail, a$k - 1, a$N - a$k)),
          solve_for(qf(tail, a$k - 1, a$N - a$k)))
  th / (1 + th)
}
a <- anova_parts(fu$total, fu$team_id)
icc <- list(estimate = a$rho, conf_int = wald_ci(a), nobs = a$N, n_clusters = a$k)

# --- caseness: GLMM (Laplace), between-within df ---------------------------------------
strict <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                       optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
gfit <- glmer(case ~ arm + stratum + team_baseline_prop + (1 | team_id), data = fu,
              family = binomial, nAGQ = 1, control = strict)
g_se <- unname(sqrt(diag(as.matrix(vcov(gfit)))))
bw_df <- length(unique(fu$team_id)) - length(fixef(gfit))  # every term is team-level
glmm <- list(names = names(fixef(gfit)), beta = unname(fixef(gfit)), se = g_se, df = bw_df,
             p = unname(2 * pt(-abs(fixef(gfit) / g_se), bw_df)),
             sigma2 = as.numeric(VarCorr(gfit)$team_id), loglik = as.numeric(logLik(gfit)))

# the primary caseness GLMM: the same model by the Laplace restricted likelihood
suppressPackageStartupMessages(library(glmmTMB))
rfit <- glmmTMB(case ~ arm + stratum + team_baseline_prop + (1 | team_id), data = fu,
                family = binomial, REML = TRUE,
                control = glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4,
                                                        rel.tol = 1e-14)))
glmm_reml <- list(names = names(fixef(rfit)$cond), beta = unname(fixef(rfit)$cond),
                  se = unname(sqrt(diag(vcov(rfit)$cond))), df = bw_df,
                  sigma2 = VarCorr(rfit)$cond$team_id[1], loglik = as.numeric(logLik(rfit)))

# --- participant-average: independence GEE, Mancl-DeRouen sandwich by hand ---------------
fu_sorted <- fu[order(fu$team_id), ]
gee <- geeglm(case ~ arm, id = factor(team_id), data = fu_sorted, family = binomial,
              corstr = "independence")
X <- model.matrix(~ arm, fu_sorted)
mu <- as.numeric(fitted(gee)); w <- mu * (1 - mu)
B <- crossprod(X, w * X); Binv <- solve(B)
meat <- matrix(0, ncol(X), ncol(X))
for (g in unique(fu_sorted$team_id)) {
  i <- fu_sorted$team_id == g
  Xi <- X[i, , drop = FALSE]; wi <- w[i]; ri <- fu_sorted$case[i] - mu[i]
  Hi <- (wi * Xi) %*% Binv %*% t(Xi)
  ui <- t(Xi) %*% solve(diag(sum(i)) - Hi, ri)
  meat <- meat + ui %*% t(ui)
}
V_md <- Binv %*% meat %*% Binv
gee_md <- list(names = colnames(X), beta = unname(coef(gee)), se = unname(sqrt(diag(V_md))),
               se_robust = unname(summary(gee)$coefficients[, "Std.err"]),
               df = length(unique(fu_sorted$team_id)) - 2)

out <- list(
  data = "data/questionnaire_core.csv",
  n_teams_analysed = length(unique(fu$team_id)),
  nobs_follow_up = nrow(fu),
  n_linked = nrow(linked),
  cross_sectional = cross, linked = link_fit, ancova = ancova,
  randomisation = randomisation, icc = icc, glmm = glmm, glmm_reml = glmm_reml, gee_independence = gee_md,
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  pbkrtest = as.character(packageVersion("pbkrtest")),
                  clubSandwich = as.character(packageVersion("clubSandwich")),
                  geepack = as.character(packageVersion("geepack")))
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), out_path)
message("wrote ", out_path)
