# IOPS (4 KiB jobs) and MiB/s (1 MiB jobs) per job per system, one group.
# gnuplot -e "out='X.png'; iops='A.dat'; mibs='B.dat'; n='4'; title='...'" throughput.gp
# Data: a header line "job SYS1 SYS2 ...", then one line per job.
set terminal pngcairo size 1200,900 font ",10" noenhanced
set output out
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right top autotitle columnhead
set grid ytics
set logscale y
set xtics rotate by -20
set multiplot layout 2,1 title title
set ylabel "IOPS (log)"
set yrange [10:*]
plot for [i=2:n+1] iops using i:xtic(1)
set ylabel "MiB/s (log)"
set yrange [1:*]
plot for [i=2:n+1] mibs using i:xtic(1)
unset multiplot
